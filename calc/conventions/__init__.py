"""Counting conventions: data that decides what counts as a MAC and a FLOP.

A convention maps a layer to a :class:`Rule`: expressions over the layer's facts — the
elementary operations from :mod:`calc.layers` (``mac``, ``bias_add``, ``add``, ``cmp`` …), the
layer-specific facts (``spatial_out``, ``rows``, ``steps`` …), ``x`` and ``y`` (input and output
elements per sample; also ``in`` and ``out``, which a rule cannot name because ``in`` is a
Python keyword), ``params``, ``weights``, ``biases``, the hint facts (``module``,
``functional``, ``operator``, ``method``, ``contiguous``, ``leaf``; see
:data:`calc.layers.HINTS`), and the facts a tool preset derives itself (``kernel_avg`` …). The
formulas never look at the convention; the convention never recomputes a formula.

A rule has two parts because some tools do not count in proportion to the batch:

* ``sample``: a count for one sample; the analysis multiplies it by the batch size;
* ``batch``: a count for the whole batch, evaluated with ``N`` (the batch size) and not
  multiplied. ptflops divides its module-hook counts by its batch counter (so they are the
  same for any batch), and thop truncates a float per layer for the whole batch.

A layer type a convention has no rule for, or a rule marked ``unsupported``, is a
:class:`ConventionError` naming the layer — never a silent zero. A rule of ``0`` is a
statement (the tool sees the layer and counts nothing), with its reason in ``why``.

Where things are: :mod:`.engine` evaluates rules (and traces them for ``calc explain``);
:mod:`.calc_own` holds calc's own conventions, given per layer kind; :mod:`.tools` one module
per tool — its presets' rules per layer type, the facts it derives, and how ``calc verify``
runs the tool. The tool presets follow how each tool counts (verified formulas: thop
0.1.1.post2209072238, ptflops 0.7.5, fvcore 0.1.5.post20221221, torchinfo 1.8.0, torch 2.13.0
``torch.utils.flop_counter``). Where the count depends on how the PyTorch code calls a layer,
they read the hint facts, whose defaults assume modules and Python operators. Their
``attention`` rules model nn.MultiheadAttention (batch_first=True, need_weights=False, as in
torchvision's ViT) and their recurrent rules batch_first=True inputs.
"""
from __future__ import annotations

from ..errors import ConventionError  # noqa: F401
from .engine import (BASE_FACTS, CONVENTIONS, OP_NAMES, Count, Convention, Derive, Number, Rule,  # noqa: F401
                     RuleSpec, Runner, Trace, get, register)
# Registered in this order (the order `calc compare` lists them): calc's own, then the tools.
from . import calc_own  # noqa: F401,E402
from .tools import thop, ptflops, fvcore, torchinfo, torch  # noqa: F401,E402

__all__ = ["BASE_FACTS", "CONVENTIONS", "OP_NAMES", "ConventionError", "Count", "Convention", "Derive", "Number",
           "Rule", "RuleSpec", "Runner", "Trace", "get", "register"]
