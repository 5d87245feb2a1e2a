"""`calc explain --symbolic` as text: each layer's parameters and MACs as formulas in the input
sizes, the totals, the polynomial on a residue class, and where the formulas were checked
against the numeric analysis. Nothing here prints."""
from __future__ import annotations

from ..check.algebra import Poly


def _class(sym) -> str:
    names = ", ".join(sym.symbols)
    if sym.modulus == 1:
        return f"for every {names}"
    if sym.residue == 0:
        return f"for {names} divisible by {sym.modulus}"
    return f"for {names} ≡ {sym.residue} (mod {sym.modulus})"


def _times_batch(p: Poly, batch: int | None) -> str:
    text = p.text()
    if batch is None:
        return f"B·({text})" if len(p.terms) > 1 else f"B·{text}"
    return text if batch == 1 else f"{batch}·({text})"


def format_symbolic(sym, batch: int = 1, varied=None) -> str:
    sizes = ", ".join(f"{k} = {v}" for k, v in sym.at.items())
    lines = [f"{sym.model} · symbolic in {', '.join(sym.symbols)} (the spec's input: {sizes}) · "
             f"convention standard · MACs per sample unless B (the batch) is shown", "",
             "layers with parameters or MACs (floor(x/d) is x/d rounded down):"]
    for lf in sym.layers:
        if not lf.params.terms and not lf.macs.terms:
            continue
        parts = []
        if lf.params.terms:
            parts.append(f"params = {lf.params.text()}")
        if lf.macs.terms:
            parts.append(f"MACs = {lf.macs.text()}")
        lines.append(f"  {lf.name} · {lf.type_name}: " + "; ".join(parts))
    at = ", ".join(f"{k} = {v}" for k, v in sym.at.items())
    lines += ["", "total:", f"  params = {sym.params.text()}", f"  MACs = {_times_batch(sym.macs, None)}",
              f"  at {at} and B = {batch}: params = {int(sym.params.evaluate(sym.at)):,}, "
              f"MACs = {batch * int(sym.macs.evaluate(sym.at)):,}"]
    if sym.macs_class is not None:
        lines += ["", f"{_class(sym)}:", f"  params = {sym.params_class.text()}",
                  f"  MACs = {_times_batch(sym.macs_class, None)}"]
    elif sym.suggest:
        lines += ["", f"sizes ≡ {sym.residue} modulo the given modulus do not make every floor exact; "
                      f"--modulus {sym.suggest} does"]
    else:
        lines += ["", "no modulus up to 2^20 makes every floor exact"]
    bad = [(s, why) for s, why in sym.checked if why is not True]
    good = [s for s, why in sym.checked if why is True]
    lines.append("")
    if sym.lost:
        lines.append("not followed symbolically (the formulas above may hold at the spec's size only): "
                     + "; ".join(sym.lost))
    shown = ", ".join("(" + ", ".join(f"{k}={v}" for k, v in s.items()) + ")" for s in good)
    lines.append(f"checked against calc's numeric count at {len(good)} sizes: {shown}")
    for s, why in bad:
        where = ", ".join(f"{k}={v}" for k, v in s.items())
        lines.append(f"  at {where}: {why}")
    if varied is not None:
        lines += ["", _varied(sym, varied)]
    return "\n".join(lines) + "\n"


def _varied(sym, v) -> str:
    names = ", ".join(v.names)
    sampled = "; ".join(f"{n} = {', '.join(map(str, vals))}" for n, vals in v.samples.items())
    if v.params is None:
        return f"in {names}: no formula — {v.reason} (sampled {sampled})"
    lines = [f"in {', '.join(sym.symbols)} and {names} (interpolated exactly from the values sampled, {sampled}; "
             f"this assumes the counts are polynomials of degree at most 4 in {names}):",
             f"  params = {v.params.text()}", f"  MACs = {_times_batch(v.macs, None)}"]
    if v.macs_class is not None:
        lines += [f"  {_class(sym)}: params = {v.params_class.text()}; MACs = {_times_batch(v.macs_class, None)}"]
    for at, why in v.checked:
        where = ", ".join(f"{k}={val}" for k, val in at.items())
        lines.append(f"  checked against calc's numeric count at {where}: " + ("equal" if why is True else why))
    return "\n".join(lines)
