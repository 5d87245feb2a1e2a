"""Every layer type calc knows: one registry (:data:`LAYERS`), one small frozen pydantic model
per type, one module per family. Importing this package imports every family, so the registry
is complete; no family module imports this package back."""

from .base import (CALLS, HINTS, LAYERS, MAX_SIZE, NO_PARAMS, Layer, Params, PosInt, register,  # noqa: F401
                   trailing_group)
from . import (activation, attention, convolution, embedding, joins, normalization, pooling,  # noqa: F401
               recurrent, shape)
from . import moe, tensors  # noqa: F401
from .joins import Join  # noqa: F401
