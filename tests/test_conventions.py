"""Counting conventions: coverage of every layer type, every tool preset against the tool's own
figures (single-layer probes and torchvision models), and calc's own conventions by hand."""
from pathlib import Path

import pytest
import yaml

from calc import ConventionError, SpecError, analyze, load_spec, parse_spec
from calc.conventions import CONVENTIONS, Convention, Rule
from calc.layers import LAYERS
from conftest import SPECS
from helpers import leaves, run_spec, run_text
from layer_samples import SAMPLES, sample_spec
from probe_data import NOT_COVERED, PROBES
from reference_data import REFERENCE

# preset -> the field of the reference data holding that tool's figure
TOOL_FIELD = {"thop": "thop_macs", "ptflops": "ptflops_pytorch_macs", "ptflops-aten": "ptflops_aten_macs",
              "fvcore": "fvcore_flops", "torchinfo": "torchinfo_mult_adds", "torch": "torch_flops"}


def figure(a, preset):
    """The number the tool itself prints: FLOPs for torch's counter, MACs for the others."""
    return a.totals.flops if CONVENTIONS[preset].reports == "flops" else a.totals.macs


def sample_model(type_name):
    return parse_spec(sample_spec(type_name), "sample.yaml").build()


# ---------------------------------------------------------------------------- coverage

def test_samples_cover_every_registered_type():
    assert set(SAMPLES) == set(LAYERS)


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_every_layer_type_has_a_rule_in_every_convention(name):
    conv = CONVENTIONS[name]
    for type_name in sorted(LAYERS):
        cls = LAYERS[type_name]
        macs, flops = conv.rules(type_name, cls.kind)   # raises if there is no rule
        model = sample_model(type_name)
        if macs.unsupported is True:
            # an explicit refusal: an error that names the layer, never a zero
            with pytest.raises(ConventionError, match=type_name):
                analyze(model, convention=name)
            continue
        for batch in (1, 3):
            try:
                a = analyze(model, batch=batch, convention=name)
            except ConventionError as err:
                # a conditional refusal (its condition holds for this sample)
                assert isinstance(macs.unsupported, str) and type_name in str(err)
                break
            assert isinstance(a.totals.macs, int) and isinstance(a.totals.flops, int)
            assert a.totals.macs >= 0 and a.totals.flops >= 0


def test_only_documented_refusals():
    refused = {(c.name, key, rule.unsupported) for c in CONVENTIONS.values() for table in (c.macs, c.flops or {})
               for key, rule in table.items() if rule.unsupported}
    # ptflops on local response norm: F.local_response_norm calls patched functions internally,
    # and no measurement of it exists in the reference data. ptflops-aten on multi-layer or
    # bidirectional RNN/GRU: which bias vectors the CPU kernel adds is not modelled (docs/conventions.md §6).
    assert refused == {("ptflops", "local_response_norm", True), ("ptflops-aten", "rnn", "num_layers > 1 or dirs > 1"),
                       ("ptflops-aten", "gru", "num_layers > 1 or dirs > 1"),
                       # every preset models nn.MultiheadAttention, which has no sliding window, KV-cache
                       # context, rotary, ALiBi, QK-norm, unscaled scores, relative position bias,
                       # attention sinks (docs/llm.md) or groups of tokens (…, L, D)
                       *((c.name, "attention", "window or context or rope or alibi or qk_norm or unscaled or "
                                               "rel_bias or sinks or groups > 1") for c in CONVENTIONS.values()
                         if c.explicit),
                       # no tool was measured on a mixture of experts or latent attention (docs/llm.md)
                       *((c.name, t, True) for c in CONVENTIONS.values() if c.explicit for t in ("moe", "mla"))}
    assert all(rule.why for c in CONVENTIONS.values() for rule in c.macs.values())


def test_a_layer_without_rule_is_an_error_naming_it():
    partial = Convention("partial", "only convolutions", macs={"conv": Rule("mac")})
    with pytest.raises(ConventionError) as info:
        run_spec("alexnet", convention=partial)
    message = str(info.value)
    assert "partial" in message and "'relu'" in message
    assert "alexnet.yaml:11" in message and "layers[0].group.layers[1].relu" in message


def test_a_refused_layer_is_an_error_with_its_line():
    with pytest.raises(ConventionError) as info:
        run_spec("alexnet_2012", convention="ptflops")
    message = str(info.value)
    assert "local_response_norm" in message and "not verified" in message
    assert "alexnet_2012.yaml:10" in message


def test_a_conditional_refusal_names_the_layer_and_the_condition():
    text = """
        name: t
        input: [5, 4]
        layers: [{{rnn: {{hidden: 6, num_layers: {n}}}}}]
    """
    one = run_text(text.format(n=1), convention="ptflops-aten")
    # one layer: W_ih·x and W_hh·h MACs at 5 steps, and one bias vector (6) per step
    assert one.totals.macs == 5 * (6 * 4 + 6 * 6) + 5 * 6
    with pytest.raises(ConventionError, match=r"cannot count this rnn \(num_layers > 1 or dirs > 1\)"):
        run_text(text.format(n=2), convention="ptflops-aten")


def test_a_rule_using_an_unknown_fact_is_an_error():
    bad = Convention("bad", "typo", macs={"conv dropout": Rule("macs")})
    with pytest.raises(ConventionError, match="'macs'.*conv2d"):
        run_text("""
            name: t
            input: [3, 8, 8]
            layers: [{conv2d: {out: 4, kernel: 3}}]
        """, convention=bad)


def test_unknown_convention():
    with pytest.raises(ConventionError, match="unknown convention 'tho'.*thop"):
        run_spec("alexnet", convention="tho")


# ---------------------------------------------------------------------------- tool presets

PROBE_CASES = [(probe, preset) for probe in PROBES for preset in TOOL_FIELD]


@pytest.mark.parametrize("probe, preset", PROBE_CASES, ids=[f"{p}-{t}" for p, t in PROBE_CASES])
def test_probe(probe, preset):
    case = PROBES[probe]
    if preset in case.get("skip", {}):
        pytest.skip(case["skip"][preset])
    doc = {"name": "probe", "input": case["input"], "layers": case["layers"]}
    if "input_kind" in case:
        doc["input_kind"] = case["input_kind"]
    model = parse_spec(yaml.safe_dump(doc), "probe.yaml").build()
    if preset in case.get("refused", {}):
        # calc does not know how this tool counts this layer: an error, not a guess
        with pytest.raises(ConventionError, match="cannot count"):
            analyze(model, batch=case["batch"], convention=preset)
        return
    a = analyze(model, batch=case["batch"], convention=preset)
    out = case["output_shape"]
    per_sample = [out[0], *out[2:]] if case.get("seq_first") else out[1:]
    assert [case["batch"], *a.output_shape] == [case["batch"], *per_sample]
    assert figure(a, preset) == case["expected"][preset]


def test_probe_coverage_is_stated():
    assert len(PROBES) + len(NOT_COVERED) == 97
    assert all(reason for reason in NOT_COVERED.values())


REF_CASES = [(key, preset) for key in REFERENCE for preset in TOOL_FIELD]


@pytest.mark.parametrize("key, preset", REF_CASES, ids=[f"{k}-{t}" for k, t in REF_CASES])
def test_reference_model(key, preset):
    ref = REFERENCE[key]
    name = key.split("@")[0]
    path = SPECS / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"no spec for {name} yet")
    batch, *shape = ref["input_shape"]
    model = load_spec(str(path)).build(input_shape=tuple(shape))
    a = analyze(model, batch=batch, convention=preset)
    assert figure(a, preset) == ref[TOOL_FIELD[preset]]


def _alexnet_sides(side):
    """torchvision AlexNet's feature-map sides at a square input: conv1, after pool1 (= conv2),
    after pool2 (= conv3..5), after pool3."""
    def conv(n, k, s, p):
        return (n + 2 * p - k) // s + 1

    def pool(n):
        return (n - 3) // 2 + 1
    h1 = conv(side, 11, 4, 2)
    h2 = pool(h1)
    h3 = pool(h2)
    return h1, h2, h3, pool(h3)


def alexnet_thop_legacy(side, batch):
    """The older thop's count, by hand: convolution kernel ops plus one bias add per output
    element, linear without bias, adaptive pool (∏ floor(in/out) + 1) per output element."""
    h1, h2, h3, h4 = _alexnet_sides(side)
    convs = [(3, 64, 11, h1), (64, 192, 5, h2), (192, 384, 3, h3), (384, 256, 3, h3), (256, 256, 3, h3)]
    conv = sum(c_out * h * h * (c_in * k * k + 1) for c_in, c_out, k, h in convs)
    pool = ((h4 // 6) ** 2 + 1) * 256 * 6 * 6
    linear = 9216 * 4096 + 4096 * 4096 + 4096 * 1000
    return batch * (conv + pool + linear)


@pytest.mark.parametrize("side, batch, printed", [(224, 1, 714_691_904), (512, 1, 3_710_034_752),
                                                  (224, 8, 5_717_535_232)])
def test_thop_legacy_reproduces_the_article(side, batch, printed):
    # the three numbers an older article printed for torchvision's AlexNet
    assert alexnet_thop_legacy(side, batch) == printed
    a = run_spec("alexnet", input_shape=(3, side, side), batch=batch, convention="thop-legacy")
    assert a.totals.macs == printed


def test_thop_legacy_differs_from_thop_by_conv_bias_and_pool_kernel():
    # at 512 px the pool sees 15×15 → 6×6: thop's kernel 2.5·2.5 = 6.25, the legacy floor 2·2 = 4
    new, old = (run_spec("alexnet", input_shape=(3, 512, 512), convention=c).totals.macs
                for c in ("thop", "thop-legacy"))
    h1, h2, h3, _ = _alexnet_sides(512)
    bias = 64 * h1 * h1 + 192 * h2 * h2 + (384 + 256 + 256) * h3 * h3
    assert old - new == bias + int((4 + 1) * 9216) - int((6.25 + 1) * 9216)
    assert new == REFERENCE["alexnet@1x3x512x512"]["thop_macs"]


def test_thop_adaptive_pool_truncates_per_batch():
    # thop: int((∏ in_i/out_i + 1)·#y) in float64 for the whole batch. For 15×17 → 5×5 the
    # kernel is 3·3.4 = 10.2; at batch 9, 11.2·1350 falls just below 15120 in binary floating point.
    text = """
        name: t
        input: [6, 15, 17]
        layers: [{adaptive_avgpool2d: {size: [5, 5]}}]
    """
    per_sample = run_text(text, convention="thop").totals.macs
    assert per_sample == int((15 / 5 * (17 / 5) + 1) * (6 * 5 * 5)) == 1680
    nine = run_text(text, convention="thop", batch=9).totals.macs
    assert nine == int((15 / 5 * (17 / 5) + 1) * (6 * 5 * 5 * 9)) == 15_119
    assert nine != 9 * per_sample


def test_ptflops_divides_module_hooks_by_the_batch():
    # ptflops total = int(module hooks / batch counter + functionals). nn.Upsample's hook counts
    # one sample's output (3·6·6 = 108), so at batch 5 it adds 108/5 = 21.6; F.interpolate
    # counts the whole batch, 5·108 = 540; int(561.6) = 561.
    text = """
        name: t
        input: [3, 3, 3]
        layers: [{upsample: {scale: 2}}]
    """
    assert run_text(text, convention="ptflops", batch=5).totals.macs == 561
    assert run_text(text, convention="ptflops", batch=1).totals.macs == 108 + 108
    # AlexNet: module hooks 715,561,896 per image whatever the batch, functionals 879,232 per image
    # (docs/conventions.md §5.4: 715,561,896 + 8·879,232).
    eight = run_spec("alexnet", batch=8, convention="ptflops").totals.macs
    assert eight == 715_561_896 + 8 * 879_232 == REFERENCE["alexnet@8x3x224x224"]["ptflops_pytorch_macs"]


# ---------------------------------------------------------------------------- calc's own conventions

def test_params_hw_alexnet_2012_first_conv():
    a = run_spec("alexnet_2012", convention="params-hw")
    first = leaves(a)[0]
    # [(11·11·3)·96 + 96]·55·55
    assert a.macs_of(first) == ((11 * 11 * 3) * 96 + 96) * 55 * 55 == 105_705_600
    # a linear layer costs its parameters once: fc8 (4096 + 1)·1000
    assert a.macs_of(leaves(a)[-1]) == 4097 * 1000


def test_with_bias_is_standard_plus_one_add_per_biased_output():
    # docs/conventions.md §10.1: AlexNet conv+linear MACs 714,188,480 plus 494,184 bias adds
    a = run_spec("alexnet", convention="with-bias")
    assert a.totals.macs == 714_188_480 + 494_184 == REFERENCE["alexnet"]["ptflops_aten_macs"]
    assert a.totals.flops == 2 * a.totals.macs


EXACT_CASES = [
    # conv 6→10, 3×5 kernel, stride 2, pad 1 on 15×17: 10×8×8 = 640 outputs of a dot product of
    # 6·3·5 = 90 terms: 90 multiplies and 89 adds, plus 1 bias add when biased
    ("conv2d: {out: 10, kernel: [3, 5], stride: 2, padding: 1, bias: false}", [6, 15, 17], 640 * (2 * 90 - 1)),
    ("conv2d: {out: 10, kernel: [3, 5], stride: 2, padding: 1}", [6, 15, 17], 640 * 2 * 90),
    # grouped: C_in/g = 2, K = 9, 9×13×15 outputs
    ("conv2d: {out: 9, kernel: 3, groups: 3, bias: false}", [6, 15, 17], 9 * 13 * 15 * (2 * 2 * 9 - 1)),
    ("linear: {out: 30}", [20], 30 * 2 * 20),
    ("linear: {out: 30, bias: false}", [7, 20], 7 * 30 * (2 * 20 - 1)),
    ("relu", [6, 15, 17], 1530),                          # 1 comparison per element
    ("sigmoid", [6, 15, 17], 4 * 1530),                   # negate, exp, add, divide
    ("maxpool2d: {kernel: 3, stride: 2}", [6, 15, 17], 6 * 7 * 8 * (9 - 1)),   # k − 1 comparisons
    ("avgpool2d: {kernel: 3, stride: 2}", [6, 15, 17], 6 * 7 * 8 * (9 - 1 + 1)),  # k − 1 adds, 1 divide
    # softmax over 6 channels, 15·17 rows: 6 exp, 5 adds, 6 divides per row
    ("softmax: {dim: 0}", [6, 15, 17], 255 * (6 + 5 + 6)),
    ("add: {with: [input]}", [6, 15, 17], 1530),          # two inputs: one add per element
    ("dropout", [6, 15, 17], 0),
]


@pytest.mark.parametrize("item, shape, flops", EXACT_CASES)
def test_exact(item, shape, flops):
    a = run_text(f"""
        name: t
        input: {shape}
        layers: [{{{item}}}]
    """ if ":" in item else f"""
        name: t
        input: {shape}
        layers: [{item}]
    """, convention="exact")
    assert a.totals.flops == flops


def test_exact_batchnorm():
    # per element: subtract mean, divide, multiply γ, add β; per channel: + ε and √
    a = run_text("""
        name: t
        input: [6, 15, 17]
        layers: [batchnorm2d]
    """, convention="exact")
    assert a.totals.flops == 4 * 1530 + 2 * 6


def test_torch_preset_equals_standard_flops():
    for name in ("alexnet", "vgg16_bn"):
        assert run_spec(name, convention="torch").totals.flops == run_spec(name).totals.flops


# ---------------------------------------------------------------------------- hints

def test_call_hint_changes_only_tool_counts():
    plain = """
        name: t
        input: [6, 15, 17]
        layers: [relu]
    """
    functional = plain.replace("[relu]", "[{relu: {call: functional}}]")
    # ptflops: nn.ReLU = module hook #y + F.relu #x; F.relu alone = #x (probe data: 4590 vs 3060 at batch 2)
    assert run_text(plain, convention="ptflops").totals.macs == 2 * 1530
    assert run_text(functional, convention="ptflops").totals.macs == 1530
    for conv in ("standard", "exact", "thop"):
        assert run_text(plain, convention=conv).totals.flops == run_text(functional, convention=conv).totals.flops


def test_call_hint_on_a_residual_describes_its_join():
    text = """
        name: t
        input: [4, 5, 5]
        layers:
          - residual:
              call: {call}
              main: [{{conv2d: {{out: 4, kernel: 3, padding: 1, bias: false}}}}]
    """
    conv = 4 * 25 * 4 * 9
    # `x + f(x)` is invisible to ptflops; torch.add is patched and counts the 100 sums
    assert run_text(text.format(call="operator"), convention="ptflops").totals.macs == conv
    assert run_text(text.format(call="functional"), convention="ptflops").totals.macs == conv + 100
    # without its shortcut the residual has no join to describe; the hint is still checked
    off = text.replace("- residual:", "- residual:\n              enabled: false")
    assert run_text(off.format(call="functional"), convention="ptflops").totals.macs == conv
    with pytest.raises(SpecError, match="call must be one of operator, functional"):
        run_text(off.format(call="module"))


def test_contiguous_hint():
    text = """
        name: t
        input: [7, 20]
        layers: [{{linear: {{out: 30, contiguous: {flag}}}}}]
    """
    # ptflops-aten: addmm with bias on a contiguous input, mm + add otherwise (probe data)
    assert run_text(text.format(flag="true"), convention="ptflops-aten").totals.macs == 7 * 30 * 21
    assert run_text(text.format(flag="false"), convention="ptflops-aten").totals.macs == 7 * 30 * 20


def test_owner_hint():
    text = """
        name: t
        input: [6, 4, 4]
        layers: [{{batchnorm2d: {{owner: {owner}}}}}]
    """
    # torchinfo counts parameters of leaf modules only: 2·C per sample
    assert run_text(text.format(owner="leaf"), convention="torchinfo").totals.macs == 12
    assert run_text(text.format(owner="container"), convention="torchinfo").totals.macs == 0


@pytest.mark.parametrize("item, message", [
    ("{conv2d: {out: 4, kernel: 3, contiguous: false}}", "hint 'contiguous' does not apply to conv2d"),
    ("{relu: {call: operator}}", "call must be one of module, functional for relu"),
    ("{linear: {out: 3, contiguous: 1}}", "contiguous must be one of true, false"),
    ("{group: {layers: [relu], call: functional}}", "applies to layer items"),
    ("{parallel: {branches: [[relu], [relu]], call: operator}}", "call must be one of functional"),
])
def test_bad_hints(item, message):
    with pytest.raises(SpecError, match=message):
        run_text(f"""
            name: t
            input: [3, 8, 8]
            layers: [{item}]
        """)


def test_hints_are_in_the_schema_and_layer_list():
    from calc.catalog import spec_schema
    from calc.render.catalog import describe_layers
    assert "call: how the layer is invoked" in describe_layers()
    relu = next(v for v in spec_schema()["$defs"]["item"]["anyOf"] if "relu" in v.get("properties", {}))
    assert relu["properties"]["relu"]["anyOf"][0]["properties"]["call"]["enum"][:2] == ["module", "functional"]
    assert all(key in Path(SPECS.parent / "README.md").read_text() for key in ("call:", "contiguous", "owner"))
