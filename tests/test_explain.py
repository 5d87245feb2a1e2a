"""`calc explain`: every explained value equals the value calc computes, and the text shows
the formula, the values put in and the result."""
import math
import re

import pytest

from calc import analyze, parse_spec
from calc.cli import main
from calc.conventions import CONVENTIONS
from calc.explain import explain, layer_steps
from calc.expr import evaluate
from calc.layers import LAYERS
from calc.render.explain import format_explanation
from conftest import SPECS
from helpers import run_spec, run_text
from layer_samples import SAMPLES, sample_spec

RESIDUAL = """
name: block
input: [64, 56, 56]
layers:
  - residual:
      name: block
      main:
        - conv2d: {out: 128, kernel: 3, stride: 2, padding: 1, bias: false}
        - batchnorm2d
        - relu
        - conv2d: {out: 128, kernel: 3, padding: 1, bias: false}
        - batchnorm2d
      shortcut:
        - conv2d: {out: 128, kernel: 1, stride: 2, bias: false}
        - batchnorm2d
  - relu
  - repeat:
      times: 3
      layers: [{conv2d: {out: 128, kernel: 3, padding: 1}}, relu]
"""


def as_python(text: str) -> str:
    """Substituted text back into expression syntax, to evaluate it independently."""
    for a, b in (("·", " * "), ("−", "-"), ("≥", ">="), ("≤", "<="), ("^", " ** ")):
        text = text.replace(a, b)
    # gcd (adaptive pooling's bins) is a declaration function that the spec evaluator lacks:
    # put in its value, computed by the standard library
    return re.sub(r"gcd\((\d+), (\d+)\)", lambda m: str(math.gcd(int(m[1]), int(m[2]))), text)


def check_step(step, expected):
    """The step's value equals calc's number, and its substituted text evaluates to it."""
    assert step.value == expected, (step, expected)
    if step.substituted and not isinstance(step.value, tuple):
        again = evaluate(as_python(step.substituted), {})
        assert math.isclose(again, step.value, rel_tol=1e-12), (step.substituted, again, step.value)


def check_leaf(a, r):
    steps = layer_steps(r)
    p = r.layer.params(r.input_shape)
    known = {"weights": p.weights, "bias": p.bias, "buffers": p.buffers, "params": p.total, **r.facts}
    seen = set()
    for st in steps:
        head, _, index = st.key.partition(".")
        if head == "shape":
            check_step(st, r.output_shape[int(index)] if index else r.output_shape)
        elif st.key in known:
            check_step(st, known[st.key])
        else:  # helper quantities (rows, groups, n, ceil.i) are still self-consistent
            assert head in ("rows", "groups", "n", "ceil", "outputs"), st
            check_step(st, st.value)
        seen.add(st.key)
    # every operation the layer counts, and every parameter kind it has, is explained
    for key in ("mac", "bias_add", "add", "mul", "div", "cmp", "exp", "sqrt", "fn"):
        if r.facts.get(key):
            assert key in seen, (r.kind, key)
    for key in ("weights", "bias", "buffers"):
        if known[key]:
            assert key in seen, (r.kind, key)
    assert "shape" in seen or any(k.startswith("shape.") for k in seen)
    # the convention's part: its last MACs and FLOPs steps are the layer's figures
    entry = next(e for e in explain(a) if e.result is r)
    conv_steps = entry.sections[-1].steps
    macs = [s for s in conv_steps if s.key == "macs"]
    flops = [s for s in conv_steps if s.key == "flops"]
    assert macs and flops
    check_step(macs[-1], a.macs_of(r))
    check_step(flops[-1], a.flops_of(r))


def check_analysis(a):
    entries = explain(a)
    assert entries[-1].name == "total"
    for e in entries:
        r = e.result
        if r.is_leaf:
            check_leaf(a, r)
            continue
        steps = {s.key: s for s in e.sections[0].steps}
        # a container's subtotal is the sum of its children
        for key, own, child_value in (("params", r.params, lambda c: c.params),
                                      ("macs", a.macs_of(r), a.macs_of), ("flops", a.flops_of(r), a.flops_of)):
            check_step(steps[key], own)
            assert own == sum(c.count * child_value(c.result) for c in r.children)
    t = a.totals
    total = {s.key: s.value for s in entries[-1].sections[0].steps}
    assert total == {"params": t.params, "macs": t.macs, "flops": t.flops}


@pytest.mark.parametrize("type_name", sorted(SAMPLES))
def test_every_layer_type_explains_its_numbers(type_name):
    model = parse_spec(sample_spec(type_name), "sample.yaml").build()
    kind = LAYERS[type_name].kind
    for conv, batch in (("standard", 1), ("exact", 2), ("thop", 3), ("torchinfo", 1)):
        if CONVENTIONS[conv].rules(type_name, kind)[0].unsupported is True:
            continue   # a preset that refuses the type outright (tests/test_conventions.py checks the error)
        check_analysis(analyze(model, convention=conv, batch=batch))


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_alexnet_explains_its_numbers(convention):
    check_analysis(run_spec("alexnet", convention=convention, batch=2))


def test_vgg_and_residual_block_explain_their_numbers():
    check_analysis(run_spec("vgg11_bn", convention="fvcore"))
    check_analysis(run_text(RESIDUAL, convention="ptflops", batch=2))
    check_analysis(run_text(RESIDUAL, convention="with-bias"))


def lines_of(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    return out.splitlines()


def test_conv_text(capsys):
    lines = [ln.strip() for ln in lines_of(capsys, "explain", str(SPECS / "alexnet.yaml"), "--layer", "features.0")]
    assert lines[0] == "alexnet · input 3×224×224 · batch 1 · convention standard"
    assert "features.0 · conv2d(out=64, kernel=11, stride=4, padding=2) · 3×224×224 → 64×55×55" in lines
    assert "weights = K_h·K_w·C_in/g·C_out = 11·11·3·64 = 23,232   (C_in/g input channels per group)" in lines
    assert "biases = C_out = 64" in lines
    assert "params = weights + biases = 23232 + 64 = 23,296" in lines
    assert ("H_out = floor((H_in + 2·p_h − d_h·(K_h − 1) − 1)/s_h) + 1 = "
            "floor((224 + 2·2 − 1·(11 − 1) − 1)/4) + 1 = 55") in lines
    assert "outputs = C_out·H_out·W_out = 64·55·55 = 193,600   (output elements)" in lines
    assert any(ln.startswith("mac = outputs·C_in/g·K_h·K_w = 193600·3·11·11 = 70,276,800")
               for ln in lines)
    assert "MACs = mac = 70,276,800" in lines
    assert "FLOPs = 2·mac = 2·70276800 = 140,553,600" in lines


def test_params_hw_text(capsys):
    lines = [ln.strip() for ln in lines_of(capsys, "explain", str(SPECS / "alexnet_2012.yaml"),
                                           "--layer", "conv1", "--convention", "params-hw")]
    assert "MACs = params·spatial_out = 34944·3025 = 105,705,600" in lines


def test_linear_text(capsys):
    lines = [ln.strip() for ln in lines_of(capsys, "explain", str(SPECS / "alexnet.yaml"), "--layer", "classifier.1",
                                           "--convention", "ptflops", "--batch", "4")]
    assert "params = weights + biases = 37748736 + 4096 = 37,752,832" in lines
    assert any(ln.startswith("mac = R·F_in·F_out = 1·9216·4096 = 37,748,736") for ln in lines)
    # ptflops' module hook is counted once per batch (divided by its batch counter)
    assert any(ln.startswith("MACs for the batch = module·(mac + bias_add) = 1·(37748736 + 4096) = 37,752,832")
               for ln in lines)
    assert "MACs = N·per sample + for the batch = 4·0 + 37752832 = 37,752,832" in lines


def test_pooling_text(capsys):
    lines = [ln.strip() for ln in lines_of(capsys, "explain", str(SPECS / "alexnet.yaml"), "--layer", "features.2",
                                           "--convention", "exact")]
    # max pooling's window may be dilated; alexnet's is not (d = 1): (55 − 2 − 1)/2 + 1 = 27
    assert ("H_out = floor((H_in + 2·p_h − d_h·(K_h − 1) − 1)/s_h) + 1 = "
            "floor((55 + 2·0 − 1·(3 − 1) − 1)/2) + 1 = 27") in lines
    assert any(ln.startswith("outputs = C·H_out·W_out = 64·27·27 = 46,656") for ln in lines)
    # 46,656 windows of 3·3 values, 8 comparisons each
    assert any(ln.startswith("cmp = outputs·(K_h·K_w − 1) = 46656·(3·3 − 1) = 373,248") for ln in lines)
    assert any("FLOPs = 2·mac − dots + bias_add + add + mul + div + cmp + exp + sqrt + fn" in ln
               and ln.endswith("= 373,248") for ln in lines)


def test_adaptive_pool_text_under_thop():
    a = run_text("""
        name: t
        input: [6, 15, 17]
        layers: [{adaptive_avgpool2d: {size: [5, 5]}}]
    """, convention="thop", batch=9)
    text = format_explanation(a, explain(a))
    # bins: 15 → 5 sum to 15 + 5 − gcd(15, 5) = 15, 17 → 5 to 17 + 5 − gcd(17, 5) = 21
    assert ("windows = C·(H_in + H_out − gcd(H_in, H_out))·(W_in + W_out − gcd(W_in, W_out)) = "
            "6·(15 + 5 − gcd(15, 5))·(17 + 5 − gcd(17, 5)) = 1,890") in text
    # thop's mean window kernel_avg = 15/5·17/5 = 10.2 (a float) is a tool fact: it shows in the rule
    assert "MACs for the batch = module·int((kernel_avg + 1)·y·N) = 1·int((10.2 + 1)·150·9) = 15,119" in text


def test_residual_block_text(capsys, tmp_path):
    path = tmp_path / "block.yaml"
    path.write_text(RESIDUAL)
    out = "\n".join(lines_of(capsys, "explain", str(path), "--layer", "block"))
    # the block's subtotal is the sum of its layers (main path, shortcut, join), each as
    # `calc analyze` names them: 3·3·64·128, BN 2·128, 3·3·128·128, BN, 1·1·64·128, BN
    parts = [3 * 3 * 64 * 128, 2 * 128, 3 * 3 * 128 * 128, 2 * 128, 64 * 128, 2 * 128]
    assert f"params = {' + '.join(map(str, parts))} = {sum(parts):,}" in out
    assert "block · residual · 64×56×56 → 128×28×28" in out
    assert "block.0 · conv2d(out=128, kernel=3, stride=2, padding=1, bias=False) · 64×56×56 → 128×28×28" in out
    assert "block.add · add() · 128×28×28 + 128×28×28 → 128×28×28" in out
    assert ("add = (k − 1)·y = (2 − 1)·100352 = 100,352   "
            "(k inputs: k − 1 additions for each of the y output elements)") in out
    whole = "\n".join(lines_of(capsys, "explain", str(path)))
    # the repeat's layers are numbered in the model's namespace, as `calc analyze` does
    assert "6 · conv2d(out=128, kernel=3, padding=1) · 128×28×28 → 128×28×28" in whole
    assert re.search(r"^total · model", whole, re.M)
    assert "model: the sum of its parts (block, 1, 2, 3, 4, 5, 6, 7; zeros left out)" in whole


def test_unknown_layer_name(capsys):
    code = main(["explain", str(SPECS / "alexnet.yaml"), "--layer", "features.99"])
    _, err = capsys.readouterr()
    assert code == 2 and "no layer named 'features.99'" in err


def test_explain_takes_the_analysis_options(capsys):
    lines = [ln.strip() for ln in lines_of(capsys, "explain", str(SPECS / "vgg16_bn.yaml"), "--input", "3x32x32",
                                           "--batch", "2", "--set", "num_classes=10", "--layer", "classifier",
                                           "--convention", "with-bias")]
    assert lines[0] == "vgg16_bn · input 3×32×32 · batch 2 · convention with-bias"
    # at 32 px the features end at 512×1×1 and the adaptive pool repeats it to 7×7
    assert "params = weights + biases = 102760448 + 4096 = 102,764,544" in lines
    assert "params = weights + biases = 40960 + 10 = 40,970" in lines
    # two samples, each (4096 + 1)·10 multiply-accumulates and bias adds
    assert "MACs = N·per sample = 2·40970 = 81,940" in lines


def test_attention_text():
    a = run_text("""
        name: t
        input: [6, 16]
        layers:
          - linear: {out: 10, name: memory}
          - linear: {out: 16}
          - attention: {heads: 4, kv_heads: 2, out: 12, out_bias: false, causal: true, kv: memory}
    """)
    text = format_explanation(a, explain(a))
    # queries 6×16, keys/values 6×10; d = 16/4 = 4; W_q 16·16, W_k and W_v 2·10·(2·4), output 16·12; biases b_q 16, b_k and b_v 2·8
    assert "D_out = out = 12   (out when given, else D)" in text
    assert ("weights = D·h·d + 2·D_kv·g·d + h·d·D_out + 0 + 0 + 0 = 16·4·4 + 2·10·2·4 + 4·4·12 + 0 + 0 + 0 = 608"
            in text)
    assert "biases = h·d + 2·g·d + 0 = 4·4 + 2·2·4 + 0 = 32" in text
    assert "proj_mac = L·D·h·d + 2·T·D_kv·g·d + L·h·d·D_out = 6·16·4·4 + 2·6·10·2·4 + 6·4·4·12 = 3,648" in text
    assert ("add = h·L·(S − 1) + 0 + scores + 0 + 0 + rotated + d·normed = 4·6·(6 − 1) + 0 + 144 + 0 + 0 + 0 + 4·0 = 264"
            in text)
    # query i keeps keys 0..i: 6·7/2 = 21 of the 36 pairs, over 4 heads 4·15 = 60 masked
    assert "masked = h·(L·S − visible) = 4·(6·6 − 21) = 60" in text


def test_recurrent_text():
    a = run_text("""
        name: t
        input: [5, 10]
        layers: [{lstm: {hidden: 20}}, {rnn: {hidden: 4, nonlinearity: relu}}]
    """)
    text = format_explanation(a, explain(a))
    # nn.LSTM(10, 20): W_ih 80×10, W_hh 80×20; sigmoid on 60 values, tanh on 40 per step
    assert "w_ih = dirs·G·H·(I + (layers − 1)·H_out) = 1·4·20·(10 + (1 − 1)·20) = 800" in text
    assert "weights = w_ih + w_hh = 800 + 1600 = 2,400" in text
    assert "add_cell = 4·H + H + sigmoids·sigmoid_add + tanhs·tanh_add = 4·20 + 20 + 60·1 + 40·2 = 240" in text
    assert "add = L·cells·add_cell = 5·1·240 = 1,200" in text
    # a relu cell counts no multiply: the tanh-only lines are left out
    assert "cmp_cell = relus·relu_cmp = 4·1 = 4" in text
    assert "mul = L·cells·mul_cell = 5·1·4" not in text and "mul_cell = tanhs" not in text
