"""How counts read in the text reports."""
from __future__ import annotations

_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def human(n: int) -> str:
    """Readable SI form of an exact count: 714188480 -> '714.19 M'."""
    for factor, unit in _UNITS:
        if abs(n) >= factor:
            return f"{n / factor:.2f} {unit}"
    return str(n)


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 1024**2:.2f} MiB"


def signed(n: int) -> str:
    """A difference, its sign always shown: '+1,024', '-3', '+0'."""
    return f"{n:+,}"
