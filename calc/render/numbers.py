"""How counts read in the text reports."""
from __future__ import annotations

_UNITS = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))


def human(n: int) -> str:
    """Readable SI form of an exact count: 714188480 -> '714.19 M'."""
    for factor, unit in _UNITS:
        if abs(n) >= factor:
            if abs(n) >= 10**15 * factor:   # beyond a float's exact digits: exact × 10^k, rounded
                return f"{_scientific(n, factor)} {unit}"
            return f"{n / factor:.2f} {unit}"
    return str(n)


def _scientific(n: int, factor: int) -> str:
    """``n / factor`` as '1.23e+400' computed with integers (a float would overflow)."""
    q = abs(n) // factor
    digits = len(str(q))
    lead = round(q / 10 ** (digits - 3)) if digits < 300 else q // 10 ** (digits - 3)
    if lead >= 1000:
        lead //= 10
        digits += 1
    return f"{'-' if n < 0 else ''}{lead // 100}.{lead % 100:02d}e+{digits - 1:02d}"


def mib(n_bytes: int) -> str:
    return f"{mib_value(n_bytes)} MiB"


def mib_value(n_bytes: int) -> str:
    """Bytes in MiB with two decimals, '1.23e+400' beyond a float's range."""
    if n_bytes >= 2**20 * 10**15:
        return _scientific(n_bytes, 2**20)
    return f"{n_bytes / 1024**2:.2f}"


def signed(n: int) -> str:
    """A difference, its sign always shown: '+1,024', '-3', '+0'."""
    return f"{n:+,}"
