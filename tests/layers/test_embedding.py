"""Embeddings and token layers (calc/layers/embedding.py): hand-derived shapes, parameters and
operations."""
import pytest

from calc.render.explain import format_step
from calc.layers import LAYERS, NO_PARAMS, Params
from calc.shapes import Tokens
from helpers import run_layer as run


def make(type_name, **args):
    return LAYERS[type_name].model_validate(args)


def explained(layer, shape):
    return [format_step(s) for s in layer.explain(shape, layer.infer(shape))]


def test_embedding():
    # GPT-2's token table: 50,257 × 768 = 38,597,376 weights; 1,024 ids read 1,024 rows
    layer = make("embedding", vocab=50257, dim=768)
    assert run(layer, Tokens((1024,))) == ((1024, 768), Params(38_597_376), {"lookups": 1024})
    # ids of any shape gain a last dim: 2×5 ids → 2×5×16, 10 rows read; 100·16 = 1,600 weights
    assert run(make("embedding", vocab=100, dim=16), Tokens((2, 5))) == ((2, 5, 16), Params(1600), {"lookups": 10})
    assert explained(make("embedding", vocab=100, dim=16), Tokens((9,))) == [
        "D = dim = 16   (a new last dimension: one vector per token id)",
        "weights = vocab·dim = 100·16 = 1,600   (the table; a padding row, if any, counts too)",
        "lookups = ids = 9   (one row copied per token id; no arithmetic)"]
    assert layer.weight_shape((1024,)) == (50257, 768)
    with pytest.raises(ValueError, match="padding_idx 100 is outside the vocabulary of 100"):
        make("embedding", vocab=100, dim=16, padding_idx=100)


def test_pos_embedding():
    # ViT-B/16: a 197 × 768 table = 151,296 weights; 197·768 = 151,296 additions
    assert run(make("pos_embedding", max_len=197), (197, 768)) == (
        (197, 768), Params(151_296), {"add": 151_296, "positions": 197})
    # a shorter sequence uses the first 7 rows; the table is still max_len·F = 10·8 = 80
    assert run(make("pos_embedding", max_len=10), (7, 2, 4)) == ((7, 2, 4), Params(80), {"add": 56, "positions": 7})
    assert explained(make("pos_embedding", max_len=10), (7, 8)) == [
        "output = input (unchanged) = 7×8",
        "weights = max_len·F = 10·8 = 80   (the table)",
        "add = L·F = 7·8 = 56   (one row added to every token)"]
    with pytest.raises(ValueError, match="the sequence has 11 positions but the table has max_len=10"):
        make("pos_embedding", max_len=10).infer((11, 8))
    with pytest.raises(ValueError, match="tokens × features"):
        make("pos_embedding", max_len=10).infer((8,))


def test_type_embedding():
    # BERT's segments: 2 × 768 = 1,536 weights; 128 tokens · 768 = 98,304 additions
    assert run(make("type_embedding"), (128, 768)) == ((128, 768), Params(1536), {"add": 98_304, "positions": 128})
    # 3 types of 8 features: 24 weights, 5·8 = 40 additions
    assert run(make("type_embedding", types=3), (5, 8)) == ((5, 8), Params(24), {"add": 40, "positions": 5})
    assert explained(make("type_embedding", types=3), (5, 8))[1] == "weights = types·F = 3·8 = 24   (the table)"


def test_class_token():
    # ViT: 196 patches + 1 class token = 197; the token is 768 weights; a copy, nothing counted
    assert run(make("class_token"), (196, 768)) == ((197, 768), Params(768), {})
    # DeiT's class and distillation tokens: 196 + 2 = 198, 2·768 = 1,536 weights
    assert run(make("class_token", count=2), (196, 768)) == ((198, 768), Params(1536), {})
    assert explained(make("class_token", count=2), (7, 8)) == [
        "L_out = L + count = 7 + 2 = 9   (learned tokens prepended; a copy, nothing counted)",
        "weights = count·F = 2·8 = 16"]


def test_to_tokens():
    # ViT's patch grid: 768 channels of 14×14 → 14·14 = 196 tokens of 768
    assert run(make("to_tokens"), (768, 14, 14)) == ((196, 768), NO_PARAMS, {})
    assert run(make("to_tokens"), (8, 2, 3, 4))[0] == (24, 8)   # 2·3·4 = 24 positions
    assert explained(make("to_tokens"), (8, 3, 4)) == [
        "output = one token per position (the product of the spatial sizes), the channels as its features = 12×8"]
    with pytest.raises(ValueError, match="expects a feature map"):
        make("to_tokens").infer((8,))


def test_to_image():
    # 196 tokens are a 14×14 square (14² = 196)
    assert run(make("to_image"), (196, 768)) == ((768, 14, 14), NO_PARAMS, {})
    # 12 tokens laid out as 3×4 (3·4 = 12)
    assert run(make("to_image", size=[3, 4]), (12, 8)) == ((8, 3, 4), NO_PARAMS, {})
    assert run(make("to_image", size=12), (12, 8))[0] == (8, 12)
    assert explained(make("to_image", size=[3, 4]), (12, 8)) == [
        "output = the channels of the tokens, laid out as 3×4 = 8×3×4"]
    with pytest.raises(ValueError, match="12 tokens are not a square; give size"):
        make("to_image").infer((12, 8))
    with pytest.raises(ValueError, match="size 3×3 holds 9 positions, not the 12 tokens"):
        make("to_image", size=[3, 3]).infer((12, 8))


def test_select_token():
    # ViT's head reads the class token: 197×768 → 768
    assert run(make("select_token"), (197, 768)) == ((768,), NO_PARAMS, {})
    assert run(make("select_token", index=-1), (7, 2, 4))[0] == (2, 4)
    assert explained(make("select_token", index=-1), (7, 8)) == ["output = the features of token −1 = 8"]
    with pytest.raises(ValueError, match="index 7 is outside the 7 tokens"):
        make("select_token", index=7).infer((7, 8))


def test_token_mean():
    # the mean of 7 tokens of 8 features: 6 additions per feature (6·8 = 48), one division each (8)
    assert run(make("token_mean"), (7, 8)) == ((8,), NO_PARAMS, {"add": 48, "div": 8})
    # 5 tokens of 2×4: F = 8, (5 − 1)·8 = 32 additions
    assert run(make("token_mean"), (5, 2, 4)) == ((2, 4), NO_PARAMS, {"add": 32, "div": 8})
    assert explained(make("token_mean"), (7, 8)) == [
        "output = one mean per feature = 8",
        "add = (L − 1)·F = (7 − 1)·8 = 48   (a sum over the L tokens per feature)",
        "div = F = 8   (one division per feature)"]


def test_calc_layers_shows_the_declared_formulas(capsys):
    from calc.cli import main
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("\npos_embedding  [added_embedding]"):].split("\n\n")[0]
    listed = ["weights: max_len·F", "add: L·F", "positions: L   (a fact for conventions)"]
    # the same declarations that computed 80 weights and 56 additions above
    assert [ln.strip() for ln in section.splitlines()[-3:]] == listed
    assert [f"{q}: {f}" for q, f in LAYERS["pos_embedding"].describe()] == listed
    assert [f"{q}: {f}" for q, f in LAYERS["type_embedding"].describe()][0] == "weights: types·F"
