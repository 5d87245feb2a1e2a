"""The builders for a mixture of experts (``moe``) and multi-head latent attention (``mla``),
written with explicit matrix products as Hugging Face's eager Mixtral/DeepSeek-V3 code computes
them, so that FlopCounterMode counts every product and the memory oracle sees what autograd keeps.

Routing is deterministic. calc counts every token through exactly top_k distinct experts; the
oracle's weights and input are zeros, so every router score ties and ``torch.topk`` alone would
choose by an unspecified tie-break. The selection therefore adds a constant preference (2, above
any score in (0, 1)) to experts (r·k + j) mod E, j < k, for token row r: a round-robin that gives
every token k distinct experts and spreads the rows over all of them. The preference is a
constant (it needs no gradient and is not saved); the expert weights are the router's scores at
the chosen experts, as in Hugging Face's DeepSeek-V3 router (``scores.gather``).
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import Refused, builds

_ACT = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU}
PREFERENCE = 2.0   # added to a preferred expert's selection score; any score is in (0, 1)


class Expert(nn.Module):
    """One MLP: down(act(gate(x)) ⊙ up(x)) (gated) or down(act(up(x)))."""

    def __init__(self, dim, hidden, gated, activation, bias):
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=bias) if gated else None
        self.up = nn.Linear(dim, hidden, bias=bias)
        self.down = nn.Linear(hidden, dim, bias=bias)
        self.act = _ACT[activation]()

    def forward(self, x):
        if self.gate is not None:
            return self.down(self.act(self.gate(x)) * self.up(x))
        return self.down(self.act(self.up(x)))


class MixtureOfExperts(nn.Module):
    def __init__(self, dim, experts, top_k, hidden, gated, activation, bias, router_bias, shared_hidden,
                 shared_gate, scoring, norm_topk):
        super().__init__()
        self.dim, self.e, self.k = dim, experts, top_k
        self.scoring, self.norm = scoring, norm_topk
        self.router = nn.Linear(dim, experts, bias=False)
        if router_bias:   # DeepSeek-V3's e_score_correction_bias: a buffer, used for the choice only
            self.register_buffer("selection_bias", torch.zeros(experts))
        else:
            self.selection_bias = None
        self.experts = nn.ModuleList(Expert(dim, hidden, gated, activation, bias) for _ in range(experts))
        self.shared = Expert(dim, shared_hidden, gated, activation, bias) if shared_hidden else None
        self.shared_gate = nn.Linear(dim, 1, bias=False) if shared_gate else None

    def forward(self, x):
        if x.shape[-1] != self.dim:
            raise Refused(f"the experts take {self.dim} features, got {x.shape[-1]}")
        rows = x.reshape(-1, self.dim)                  # a view of a contiguous input
        logits = self.router(rows)
        scores = logits.softmax(-1) if self.scoring == "softmax" else logits.sigmoid()
        with torch.no_grad():
            choice = scores + self.selection_bias if self.selection_bias is not None else scores.clone()
            r = torch.arange(rows.shape[0]).unsqueeze(1)
            preferred = (r * self.k + torch.arange(self.k)) % self.e
            choice.scatter_add_(1, preferred, torch.full(preferred.shape, PREFERENCE, dtype=choice.dtype))
            index = choice.topk(self.k, dim=-1).indices
        weights = scores.gather(-1, index)
        if self.norm:
            weights = weights / weights.sum(-1, keepdim=True)
        out = torch.zeros_like(rows)
        for e, expert in enumerate(self.experts):
            token, slot = torch.where(index == e)
            if token.numel() == 0:      # as Hugging Face, an expert no token chose does not run
                continue
            y = expert(rows[token]) * weights[token, slot, None]
            out.index_add_(0, token, y)
        if self.shared is not None:
            shared = self.shared(rows)
            if self.shared_gate is not None:
                shared = shared * self.shared_gate(rows).sigmoid()
            out = out + shared
        return out.reshape(x.shape)


@builds("moe")
def _moe(layer, shape):
    if not shape:
        raise Refused("a mixture of experts takes (…, D) features, got a scalar")
    if layer.top_k > layer.experts:    # torch.topk would refuse k > E at the first call
        raise Refused(f"selected index k out of range: top_k={layer.top_k} of {layer.experts} experts")
    if layer.shared_gate and not layer.shared_hidden:
        raise Refused("a shared gate without shared experts")
    return MixtureOfExperts(shape[-1], layer.experts, layer.top_k, layer.hidden, layer.gated, layer.activation,
                            layer.bias, layer.router_bias, layer.shared_hidden, layer.shared_gate, layer.scoring,
                            layer.norm_topk)


class LatentAttention(nn.Module):
    """DeepSeek-V2/V3's multi-head latent attention as Hugging Face's DeepseekV3Attention computes
    it in eager mode, without the rotation (as calc's attention oracle, which runs no rotary:
    rotation changes no product FlopCounterMode counts). ``absorbed``: kv_b folded into the query
    and output paths, attention over the c latent features (DeepSeek's inference form)."""

    def __init__(self, dim, heads, c, q_rank, d_n, d_r, d_v, bias, causal, absorbed):
        super().__init__()
        self.h, self.c, self.d_n, self.d_r, self.d_v = heads, c, d_n, d_r, d_v
        self.causal, self.absorbed = causal, absorbed
        d_qk = d_n + d_r
        if q_rank is None:
            self.q_proj = nn.Linear(dim, heads * d_qk, bias=bias)
        else:
            self.q_a = nn.Linear(dim, q_rank, bias=bias)
            self.q_norm = nn.RMSNorm(q_rank)
            self.q_b = nn.Linear(q_rank, heads * d_qk, bias=False)
        self.kv_a = nn.Linear(dim, c + d_r, bias=bias)
        self.kv_norm = nn.RMSNorm(c)
        self.kv_b = nn.Linear(c, heads * (d_n + d_v), bias=False)
        self.o_proj = nn.Linear(heads * d_v, dim, bias=bias)
        self.scale = d_qk ** -0.5

    def forward(self, x):
        n, length, _ = x.shape
        h, c, d_n, d_r, d_v = self.h, self.c, self.d_n, self.d_r, self.d_v
        q = self.q_proj(x) if hasattr(self, "q_proj") else self.q_b(self.q_norm(self.q_a(x)))
        q = q.view(n, length, h, d_n + d_r).transpose(1, 2)                  # (N, h, L, d_n + d_r)
        latent, k_rot = self.kv_a(x).split([c, d_r], dim=-1)
        latent = self.kv_norm(latent)                                        # (N, L, c)
        k_rot = k_rot.unsqueeze(1)                                           # (N, 1, L, d_r), shared by the heads
        if self.absorbed:
            w = self.kv_b.weight.view(h, d_n + d_v, c)
            q_nope, q_rot = q.split([d_n, d_r], dim=-1)
            q_lat = torch.matmul(q_nope, w[:, :d_n])                         # (N, h, L, c)
            scores = (torch.matmul(q_lat, latent.unsqueeze(1).transpose(-2, -1))
                      + torch.matmul(q_rot, k_rot.transpose(-2, -1))) * self.scale
        else:
            kv = self.kv_b(latent).view(n, length, h, d_n + d_v).transpose(1, 2)
            k_nope, v = kv.split([d_n, d_v], dim=-1)
            k = torch.cat([k_nope, k_rot.expand(n, h, length, d_r)], dim=-1)
            scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        if self.causal:
            mask = torch.ones(length, length, dtype=torch.bool).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        probs = scores.softmax(-1)
        if self.absorbed:
            y = torch.matmul(torch.matmul(probs, latent.unsqueeze(1)), w[:, d_n:].transpose(-2, -1))
        else:
            y = torch.matmul(probs, v)                                       # (N, h, L, d_v)
        return self.o_proj(y.transpose(1, 2).reshape(n, length, h * d_v))


@builds("mla")
def _mla(layer, shape):
    if len(shape) != 2:
        raise Refused(f"latent attention takes tokens × features (L, D), got rank {len(shape)}")
    if layer.context is not None:
        raise Refused("the oracle runs a whole sequence, not a step continuing a KV cache (context)")
    return LatentAttention(shape[-1], layer.heads, layer.kv_lora_rank, layer.q_lora_rank, layer.qk_nope_head_dim,
                           layer.qk_rope_head_dim, layer.v_head_dim, layer.bias, layer.causal, layer.absorbed)
