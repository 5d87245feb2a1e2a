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
        # T5 (as Hugging Face's T5Attention): scores not scaled; a relative position bias added to
        # them, computed by the stack's first layer from its bucket table (relative_attention_bias,
        # rel_buckets × heads) and reused by the later layers of the stack (``handed``: the
        # module's per-forward registry, set by LazyLeaf).
        self.scaled, self.rel_bias = scaled, rel_bias
        # Mistral's window (query i sees keys i − W + 1 … i) and StreamingLLM's sink tokens (the
        # first keys, always seen); GPT-OSS's sinks: a learned logit per head joins each softmax
        # row, its probability dropped.
        self.window, self.sink_tokens = window, sink_tokens
        self.sink = nn.Parameter(torch.zeros(heads)) if sinks else None
        if rel_buckets:
            self.relative_attention_bias = nn.Embedding(rel_buckets, heads)
        self.handed = None
        # impl: sdpa: in training (the memory oracle), F.scaled_dot_product_attention; in
        # evaluation the written-out products, which FlopCounterMode counts (same values).
        self.fused = fused
        self.fused_eval = False    # the inference-peak oracle runs impl: sdpa fused in evaluation too
        self.selective = None      # the checkpointing oracle: a list collecting what the core keeps
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
        if self.fused and (self.training or self.fused_eval):
            if self.sink is not None or (self.window is not None and self.window < s_len):
                raise Refused("a fused kernel with sinks or a window shorter than the keys is not modelled")
            k = k.reshape(n, s_len, g, d).transpose(1, 2)
            v = v.reshape(n, s_len, g, d).transpose(1, 2)
            if g != h:
                k, v = k.repeat_interleave(h // g, dim=1), v.repeat_interleave(h // g, dim=1)
            mask = self.position_bias(length, s_len) if self.rel_bias else None
            if mask is not None and self.causal:
                mask = mask.masked_fill(torch.ones(length, s_len, dtype=torch.bool).triu(1), float("-inf"))
            y = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=self.causal and mask is None, scale=None if self.scaled else 1.0)
            return self.proj(y.transpose(1, 2).reshape(n, length, h * d))
        k = k.reshape(n, s_len, g, d).transpose(1, 2).repeat_interleave(h // g, dim=1)
        v = v.reshape(n, s_len, g, d).transpose(1, 2).repeat_interleave(h // g, dim=1)
        if self.selective is not None and self.training:
            # selective recomputation (Korthikanti et al. 2022): the core from Q, K, V to the
            # context is checkpointed; Q, K and V are what it keeps
            from torch.utils.checkpoint import checkpoint
            self.selective += [q, k, v]
            y = checkpoint(self.core, q, k, v, length, s_len, use_reentrant=False)
        else:
            y = self.core(q, k, v, length, s_len)
        return self.proj(y.transpose(1, 2).reshape(n, length, h * d))

    def core(self, q, k, v, length, s_len):
        """Scores, (scaled, biased, masked), softmax, probabilities · V."""
        d = self.d
        scores = torch.matmul(q, k.transpose(-2, -1))
        if self.scaled:
            scores = scores * d ** -0.5
        if self.rel_bias:
            scores += self.position_bias(length, s_len)    # in place, as T5Attention's `scores +=`
        if self.causal:
            mask = torch.ones(length, s_len, dtype=torch.bool).triu(1)
            if self.window is not None:
                mask = mask | _outside_window(length, s_len, self.window, self.sink_tokens or 0)
            scores = scores.masked_fill(mask, float("-inf"))
        if self.sink is not None:
            sink = self.sink.view(1, self.h, 1, 1).expand(scores.shape[0], self.h, length, 1)
            probs = torch.cat([scores, sink], dim=-1).softmax(-1)[..., :-1]
        else:
            probs = scores.softmax(-1)
        return torch.matmul(probs, v)

    def position_bias(self, length, s_len):
        """(1, h, L, S): the stack's bias, made here from the bucket table or reused."""
        if not hasattr(self, "relative_attention_bias"):
            bias = (self.handed or {}).get("rel_bias")
            if bias is None or tuple(bias.shape) != (1, self.h, length, s_len):
                raise Refused(f"rel_bias: no earlier attention with rel_buckets made a bias of {self.h} heads "
                              f"for {length} × {s_len} positions")
            return bias
        # The bucket of each relative position (key − query). Which bucket does not matter to
        # shapes, counts or memory (the table is zeros); T5's own bucketing is log-spaced.
        rel = torch.arange(s_len)[None, :] - torch.arange(length)[:, None]
        buckets = rel.clamp(0, self.relative_attention_bias.num_embeddings - 1)
        bias = self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)
        if self.handed is not None:
            self.handed["rel_bias"] = bias
        return bias


def _outside_window(length, s_len, window, sink_tokens):
    """Keys at least ``window`` behind the query and past the first ``sink_tokens`` (a function, so
    that its position tensors are freed on return, as calc's inference steps count them)."""
    i, j = torch.arange(length).unsqueeze(1), torch.arange(s_len).unsqueeze(0)
    return (i - j >= window) & (j >= sink_tokens)


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
