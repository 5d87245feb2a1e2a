"""calc: a framework-free static calculator of neural-network cost."""
from __future__ import annotations

__version__ = "0.1.0"

from .analysis import Analysis, analyze  # noqa: E402
from .errors import CalcError, ConventionError, InputError, OracleError, ShapeError, SpecError  # noqa: E402
from .spec import Spec, load_spec, parse_spec  # noqa: E402

__all__ = ["Analysis", "analyze", "CalcError", "ConventionError", "InputError", "OracleError", "ShapeError",
           "SpecError", "Spec", "load_spec", "parse_spec", "__version__"]
