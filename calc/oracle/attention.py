"""The attention builder: multi-head (and grouped-query) attention written out in matrix
products."""
from __future__ import annotations

import torch
from torch import nn

from .registry import Refused, builds


class MultiHeadAttention(nn.Module):
    """Attention written with explicit matrix products, which FlopCounterMode counts (PyTorch's
    fused CPU kernels have no FLOP formula). K and V heads are shared by heads/kv_heads query
    heads; causal masking aligns row i with keys 0..i, as PyTorch's is_causal."""

    def __init__(self, dim, kv_dim, heads, kv_heads, head_dim, out, bias, out_bias, packed, causal,
                 fused=False, scaled=True, rel_bias=False, rel_buckets=None, sinks=False, window=None,
                 sink_tokens=None):
        super().__init__()
        self.h, self.g, self.d, self.causal = heads, kv_heads, head_dim, causal
        self.scaled, self.rel_bias, self.window, self.sink_tokens = scaled, rel_bias, window, sink_tokens
        # T5's relative position bias: the layer given rel_buckets holds the table (buckets × heads)
        # and adds its bias to the scores; the stack's other layers add that same tensor, an
        # addition that keeps nothing and counts no product, which the oracle leaves out.
        self.rel_table = nn.Embedding(rel_buckets, heads) if rel_bias and rel_buckets else None
        # GPT-OSS's sinks: a learned logit per head joins each softmax row, its probability dropped.
        self.sink = nn.Parameter(torch.zeros(heads)) if sinks else None
        # impl: sdpa: in training (the memory oracle), F.scaled_dot_product_attention; in
        # evaluation the written-out products, which FlopCounterMode counts (same values).
        self.fused = fused
        self.packed = packed and dim == kv_dim
        if self.packed:
            self.qkv = nn.Linear(dim, (heads + 2 * kv_heads) * head_dim, bias=bias)
        else:
            self.q = nn.Linear(dim, heads * head_dim, bias=bias)
            self.k = nn.Linear(kv_dim, kv_heads * head_dim, bias=bias)
            self.v = nn.Linear(kv_dim, kv_heads * head_dim, bias=bias)
        self.proj = nn.Linear(heads * head_dim, out, bias=out_bias)

    def forward(self, xs):
        x, m = (xs[0], xs[-1]) if isinstance(xs, (list, tuple)) else (xs, xs)
        if x.dim() > 3:   # groups of tokens (…, L, D): each group is a sequence of the batch
            lead = x.shape[:-2]
            y = self.forward([x.reshape(-1, *x.shape[-2:]), m.reshape(-1, *m.shape[-2:])])
            return y.reshape(*lead, *y.shape[-2:])
        n, length, s_len = x.shape[0], x.shape[1], m.shape[1]
        h, g, d = self.h, self.g, self.d
        if self.packed:
            q, k, v = self.qkv(x).split([h * d, g * d, g * d], dim=-1)
        else:
            q, k, v = self.q(x), self.k(m), self.v(m)
        q = q.reshape(n, length, h, d).transpose(1, 2)
        if self.fused and self.training:
            if self.rel_table is not None or self.sink is not None:
                raise Refused("a fused kernel with a relative position bias or sinks is not modelled")
            k = k.reshape(n, s_len, g, d).transpose(1, 2)
            v = v.reshape(n, s_len, g, d).transpose(1, 2)
            if g != h:
                k, v = k.repeat_interleave(h // g, dim=1), v.repeat_interleave(h // g, dim=1)
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                                                 scale=None if self.scaled else 1.0)
            return self.proj(y.transpose(1, 2).reshape(n, length, h * d))
        k = k.reshape(n, s_len, g, d).transpose(1, 2).repeat_interleave(h // g, dim=1)
        v = v.reshape(n, s_len, g, d).transpose(1, 2).repeat_interleave(h // g, dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1))
        if self.scaled:
            scores = scores * d ** -0.5
        if self.rel_table is not None:
            # a bucket per query/key offset (T5 buckets log-spaced offsets; which bucket changes no count)
            offset = torch.arange(s_len).unsqueeze(0) - torch.arange(length).unsqueeze(1)
            buckets = offset.abs().clamp(max=self.rel_table.num_embeddings - 1)
            scores = scores + self.rel_table(buckets).permute(2, 0, 1).unsqueeze(0)
        if self.causal:
            mask = torch.ones(length, s_len, dtype=torch.bool).triu(1)
            if self.window is not None:   # query i sees keys i − W + 1 … i, and the first sink tokens
                i, j = torch.arange(length).unsqueeze(1), torch.arange(s_len).unsqueeze(0)
                mask = mask | ((i - j >= self.window) & (j >= (self.sink_tokens or 0)))
            scores = scores.masked_fill(mask, float("-inf"))
        if self.sink is not None:
            sink = self.sink.view(1, h, 1, 1).expand(n, h, length, 1)
            probs = torch.cat([scores, sink], dim=-1).softmax(-1)[..., :-1]
        else:
            probs = scores.softmax(-1)
        y = torch.matmul(probs, v)
        return self.proj(y.transpose(1, 2).reshape(n, length, h * d))


@builds("attention")
def _attention(layer, shapes):
    shapes = shapes if isinstance(shapes, list) else [shapes]   # self attention: one input
    q, m = shapes[0], shapes[-1]
    for s in (q, m):
        if len(s) < 2:
            raise Refused(f"attention takes tokens × features (…, L, D), got rank {len(s)}")
    dim, kv_dim = q[-1], m[-1]
    heads, kv_heads = layer.heads, layer.kv_heads or layer.heads
    if heads % kv_heads:   # as the grouped-query layout requires
        raise Refused(f"heads={heads} is not a multiple of kv_heads={kv_heads}")
    if layer.head_dim is None and dim % heads:   # as nn.MultiheadAttention asserts
        raise Refused(f"embed_dim {dim} must be divisible by num_heads {heads}")
    head_dim = layer.head_dim or dim // heads
    out_bias = layer.bias if layer.out_bias is None else layer.out_bias
    return MultiHeadAttention(dim, kv_dim, heads, kv_heads, head_dim, layer.out or dim, layer.bias,
                              out_bias, layer.packed, layer.causal, getattr(layer, "impl", None) == "sdpa",
                              layer.scaled, layer.rel_bias, layer.rel_buckets, layer.sinks, layer.window,
                              layer.sink_tokens)
