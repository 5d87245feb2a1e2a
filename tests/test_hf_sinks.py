"""Attention sinks against transformers' GPT-OSS attention (the optional extra `hf`): its learned
sink logit per head (GptOssAttention.sinks) in the parameters, and the FLOPs of its eager forward
under torch.utils.flop_counter.FlopCounterMode, which joins the sinks to the softmax and adds no
matmul."""
import warnings

import pytest

from calc.layers import LAYERS

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


@pytest.mark.parametrize("window", [None, 4])
def test_gpt_oss_attention_with_sinks(window):
    from transformers.models.gpt_oss.modeling_gpt_oss import GptOssAttention, GptOssRotaryEmbedding
    cfg = transformers.GptOssConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                                    num_hidden_layers=1, attention_bias=True, sliding_window=window or 128,
                                    layer_types=["sliding_attention" if window else "full_attention"])
    cfg._attn_implementation = "eager"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attn = GptOssAttention(cfg, 0).eval()
    torch.nn.init.normal_(attn.sinks)
    layer = LAYERS["attention"](heads=4, kv_heads=2, head_dim=24, bias=True, causal=True, rope=True, sinks=True,
                                window=window)
    batch, seq = 2, 9
    out, params, ops = layer.evaluate((seq, 64))
    assert params.total == sum(p.numel() for p in attn.parameters())
    x = torch.randn(batch, seq, 64)
    pos = GptOssRotaryEmbedding(cfg)(x, torch.arange(seq)[None])
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        attn(x, pos, None)
    # the dense kernel: the projections and both attention matmuls, 2 FLOPs per MAC
    assert 2 * batch * ops["mac"] == fc.get_total_flops()
