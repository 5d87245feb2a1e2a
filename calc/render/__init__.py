"""Rendering: pure functions from computed results to text. Nothing here computes a count or prints.

One module per output (``report`` for `calc analyze`, ``compare``, ``sweep``, ``explain``,
``catalog``), all drawing their tables with :mod:`calc.render.table`. This package imports none
of them, so a command loads only the rendering it uses.
"""
