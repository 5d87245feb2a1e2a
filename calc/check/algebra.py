"""A small exact algebra for `calc explain --symbolic`: polynomials with rational coefficients
over atoms, where an atom is a size symbol (H, W, L …) or the floor of a polynomial divided by a
whole number. No sympy: what a network does to its input sizes is +, −, ×, floor and ceil by
constants (strides), which this closes over exactly.

``floor(P / d)`` is kept canonical: integer parts are taken out term by term (each monomial is
a whole number, so ⌊(d·q + r)·m / d⌋ = q·m + ⌊r·m / d⌋ summed), the remainder's coefficients lie
in [0, d) and share no factor with d; a constant remainder is a number. So substituting
``H = M·t + r`` reduces every floor to a polynomial once M is a multiple of its strides, which
is how the polynomial on a residue class is found (:func:`on_residue_class`).

:class:`Dual` carries a polynomial inside an ``int`` (its value at the spec's own size), so the
layers' own declared formulas, compiled to Python, compute with it unchanged: every + − × and
``//`` by a constant builds the formula; what cannot be followed symbolically (a division to a
real number, a size used as a count of steps) is noted in :data:`LOST`, and the formulas are
checked against the numeric analysis at other sizes before they are shown.
"""
from __future__ import annotations

from fractions import Fraction
from math import gcd, lcm
from typing import Mapping

LOST: list[str] = []     # what a computation could not follow symbolically (reset by the caller)
from ..limits import MAX_MODULUS, MAX_TERMS  # noqa: E402 - a formula larger than MAX_TERMS is refused


class Atom:
    __slots__ = ("key", "name", "inner", "div")

    def __init__(self, name: str | None = None, inner: "Poly | None" = None, div: int = 1):
        self.name, self.inner, self.div = name, inner, div
        if name is None:
            text = inner.text()
            name_key = f"floor({text}/{div})" if text.isidentifier() else f"floor(({text})/{div})"
        self.key = name if name is not None else name_key


_ATOMS: dict[str, Atom] = {}


def _atom(atom: Atom) -> str:
    _ATOMS.setdefault(atom.key, atom)
    return atom.key


class Poly:
    """Σ coefficient · monomial; a monomial is a sorted tuple of (atom key, power)."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict | None = None):
        self.terms = {m: c for m, c in (terms or {}).items() if c}
        if len(self.terms) > MAX_TERMS:
            from ..errors import SpecError
            raise SpecError(f"a symbolic count has more than {MAX_TERMS:,} terms; calc stops there")

    @staticmethod
    def const(value) -> "Poly":
        return Poly({(): Fraction(value)})

    @staticmethod
    def symbol(name: str) -> "Poly":
        return Poly({((_atom(Atom(name)), 1),): Fraction(1)})

    def is_const(self) -> bool:
        return all(m == () for m in self.terms)

    def value(self) -> Fraction:
        return self.terms.get((), Fraction(0))

    def __add__(self, other: "Poly") -> "Poly":
        out = dict(self.terms)
        for m, c in other.terms.items():
            out[m] = out.get(m, 0) + c
        return Poly(out)

    def __neg__(self) -> "Poly":
        return Poly({m: -c for m, c in self.terms.items()})

    def __sub__(self, other: "Poly") -> "Poly":
        return self + (-other)

    def __mul__(self, other: "Poly") -> "Poly":
        out: dict = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                m = _mono_mul(m1, m2)
                out[m] = out.get(m, 0) + c1 * c2
        return Poly(out)

    def scale(self, k) -> "Poly":
        return Poly({m: c * k for m, c in self.terms.items()})

    def floordiv(self, d: int) -> "Poly":
        """⌊self / d⌋ for a whole number d ≠ 0, in canonical form."""
        if d < 0:
            return (-self).floordiv(-d)
        if self.is_const():
            return Poly.const(self.value() // d)
        nested = self._floor_plus_const()
        if nested is not None:
            # ⌊(⌊Q/a⌋ + c)/d⌋ = ⌊(Q + a·c)/(a·d)⌋ for whole Q and positive a, d
            inner, a, c = nested
            return (inner + Poly.const(a * c)).floordiv(a * d)
        scale = lcm(*(c.denominator for c in self.terms.values()))
        p, d = self.scale(scale), d * scale
        whole, rest = {}, {}
        for m, c in p.terms.items():
            q, r = divmod(int(c), d)
            if q:
                whole[m] = Fraction(q)
            if r:
                rest[m] = r
        if not rest:
            return Poly(whole)
        if list(rest) == [()]:
            return Poly(whole) + Poly.const(rest[()] // d)
        g = gcd(d, *rest.values())
        inner = Poly({m: Fraction(r // g) for m, r in rest.items()})
        key = _atom(Atom(inner=inner, div=d // g))
        return Poly(whole) + Poly({((key, 1),): Fraction(1)})

    def _floor_plus_const(self):
        """(Q, a, c) when self is ⌊Q/a⌋ + c with c whole, else None."""
        c = self.terms.get((), Fraction(0))
        rest = [(m, k) for m, k in self.terms.items() if m]
        if len(rest) != 1 or rest[0][1] != 1 or c.denominator != 1:
            return None
        (m, _), = rest
        if len(m) != 1 or m[0][1] != 1:
            return None
        atom = _ATOMS[m[0][0]]
        return None if atom.name is not None else (atom.inner, atom.div, int(c))

    def evaluate(self, values: Mapping[str, int]) -> Fraction:
        total = Fraction(0)
        cache: dict = {}
        for m, c in self.terms.items():
            term = c
            for key, power in m:
                term *= _atom_value(key, values, cache) ** power
            total += term
        return total

    def substitute(self, values: Mapping[str, "Poly"]) -> "Poly":
        """Replace size symbols by polynomials; floors are rebuilt (and so simplified)."""
        out = Poly()
        cache: dict = {}
        for m, c in self.terms.items():
            term = Poly.const(c)
            for key, power in m:
                base = _atom_subst(key, values, cache)
                for _ in range(power):
                    term = term * base
            out = out + term
        return out

    def atoms(self) -> set[str]:
        return {key for m in self.terms for key, _ in m}

    def text(self, order=None) -> str:
        if not self.terms:
            return "0"
        items = sorted(self.terms.items(), key=lambda mc: (-sum(p for _, p in mc[0]), mc[0]))
        out = ""
        for m, c in items:
            sign = "−" if c < 0 else "+"
            c = abs(c)
            factors = [key if power == 1 else f"{_paren(key)}^{power}" for key, power in m]
            if c != 1 or not factors:
                factors.insert(0, _coef(c) if factors else _coef(c))
            body = "·".join(factors)
            out += (("−" if sign == "−" else "") + body) if not out else f" {sign} {body}"
        return out

    def __repr__(self):
        return f"Poly({self.text()})"


def _paren(key: str) -> str:
    return key if key.isidentifier() or key.startswith("floor") else f"({key})"


def _coef(c: Fraction) -> str:
    if c.denominator == 1:
        return str(c.numerator)
    return f"({c.numerator}/{c.denominator})"


def _mono_mul(m1: tuple, m2: tuple) -> tuple:
    if not m1:
        return m2
    if not m2:
        return m1
    powers = dict(m1)
    for key, p in m2:
        powers[key] = powers.get(key, 0) + p
    return tuple(sorted(powers.items()))


def _atom_value(key: str, values, cache) -> Fraction:
    hit = cache.get(key)
    if hit is None:
        atom = _ATOMS[key]
        if atom.name is not None:
            hit = Fraction(values[atom.name])
        else:
            hit = Fraction(atom.inner.evaluate(values) // atom.div)
        cache[key] = hit
    return hit


def _atom_subst(key: str, values, cache) -> Poly:
    hit = cache.get(key)
    if hit is None:
        atom = _ATOMS[key]
        if atom.name is not None:
            hit = values.get(atom.name) or Poly({((key, 1),): Fraction(1)})
        else:
            hit = atom.inner.substitute(values).floordiv(atom.div)
        cache[key] = hit
    return hit


def on_residue_class(p: Poly, symbols: list[str], modulus: int | None = None, residue: int = 0,
                     max_modulus: int = MAX_MODULUS) -> tuple[Poly, int] | None:
    """``p`` as a plain polynomial in the symbols for every size ≡ ``residue`` (mod the modulus),
    with the modulus: the given one, or the smallest power-of-factors that makes every floor exact.
    None when the given modulus does not (or none up to ``max_modulus`` does)."""
    m = modulus or 1
    while m <= max_modulus:
        steps = {s: Poly.symbol(f"_t_{s}").scale(m) + Poly.const(residue % m) for s in symbols}
        reduced = p.substitute(steps)
        left = [k for k in reduced.atoms() if _ATOMS[k].name is None]
        if not left:
            back = {f"_t_{s}": (Poly.symbol(s) - Poly.const(residue % m)).scale(Fraction(1, m)) for s in symbols}
            return reduced.substitute(back), m
        if modulus:
            return None
        atom = _ATOMS[left[0]]
        coeffs = [abs(int(c)) for mono, c in atom.inner.terms.items() if mono]
        need = atom.div // gcd(atom.div, *coeffs) if coeffs else atom.div
        m *= max(need, 2)
    return None


class Dual(int):
    """An int (the size at the spec's own input) that carries its formula :attr:`p`."""

    # (no __slots__: an int subtype cannot have them)

    def __new__(cls, value: int, p: Poly):
        obj = int.__new__(cls, value)
        obj.p = p
        return obj

    def _symbolic(self) -> bool:
        return not self.p.is_const()

    def _lose(self, what: str):
        if self._symbolic():
            LOST.append(what)

    def __add__(self, o):
        q = _poly(o)
        return NotImplemented if q is None else Dual(int(self) + int(o), self.p + q)
    __radd__ = __add__

    def __sub__(self, o):
        q = _poly(o)
        return NotImplemented if q is None else Dual(int(self) - int(o), self.p - q)

    def __rsub__(self, o):
        q = _poly(o)
        return NotImplemented if q is None else Dual(int(o) - int(self), q - self.p)

    def __mul__(self, o):
        q = _poly(o)
        return NotImplemented if q is None else Dual(int(self) * int(o), self.p * q)
    __rmul__ = __mul__

    def __neg__(self):
        return Dual(-int(self), -self.p)

    def __pos__(self):
        return self

    def __abs__(self):
        return self if int(self) >= 0 else -self

    def __floordiv__(self, o):
        q = _poly(o)
        if q is None:
            return NotImplemented
        if not q.is_const() or int(o) == 0:
            self._lose("a division by a size")
            return int(self) // int(o)
        return Dual(int(self) // int(o), self.p.floordiv(int(o)))

    def __rfloordiv__(self, o):
        self._lose("a division by a size")
        return int(o) // int(self)

    def __mod__(self, o):
        q = _poly(o)
        if q is None or not q.is_const():
            self._lose("a remainder by a size")
            return int(self) % int(o)
        return self - Dual(int(self) // int(o), self.p.floordiv(int(o))) * int(o)

    def __pow__(self, e, mod=None):
        if mod is None and isinstance(e, int) and not isinstance(e, Dual) and 0 <= e <= 8:
            out = Dual(1, Poly.const(1))
            for _ in range(e):
                out = out * self
            return out
        self._lose("a power")
        return int.__pow__(int(self), int(e) if isinstance(e, Dual) else e, mod)

    def __truediv__(self, o):
        self._lose("a division to a real number")
        return int(self) / (int(o) if isinstance(o, Dual) else o)

    def __rtruediv__(self, o):
        self._lose("a division to a real number")
        return o / int(self)

    def __index__(self):
        self._lose("a size used as a count")
        return int(self)

    def __reduce__(self):   # pragma: no cover - never pickled; keep the int behaviour explicit
        return (int, (int(self),))


def _poly(o) -> Poly | None:
    if isinstance(o, Dual):
        return o.p
    if isinstance(o, int):   # bool too
        return Poly.const(int(o))
    return None
