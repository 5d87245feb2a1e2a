"""calc: a framework-free static calculator of neural-network cost."""
from __future__ import annotations

__version__ = "0.1.0"

# The names below are imported on first use (PEP 562), not with the package: `calc --version`
# and `calc --help` then load no pydantic and no layer type, and every command loads only the
# modules it uses. ``from calc import analyze`` works as before.
_LAZY = {
    "Analysis": "analysis", "analyze": "analysis",
    "CalcError": "errors", "ConventionError": "errors", "InputError": "errors", "OracleError": "errors",
    "ShapeError": "errors", "SpecError": "errors",
    "Spec": "spec", "load_spec": "spec", "parse_spec": "spec",
}

__all__ = ["Analysis", "analyze", "CalcError", "ConventionError", "InputError", "OracleError", "ShapeError",
           "SpecError", "Spec", "load_spec", "parse_spec", "__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'calc' has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
