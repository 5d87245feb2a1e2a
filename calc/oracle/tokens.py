"""Builders for the embedding and token family: token embeddings, added tables, class tokens,
and the moves between images and token sequences."""
from __future__ import annotations

import torch
from torch import nn

from .registry import Fn, Refused, builds, require_sequence


class AddedTable(nn.Module):
    """A learned table added to the tokens: row i to token i (positions), or the row of the
    token's type, here type 0 for every token (type ids come with the input)."""

    def __init__(self, rows: int, features: tuple, positional: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(rows, *features))
        self.positional = positional

    def forward(self, x):
        if self.positional:   # a lookup of positions 0..L-1, as GPT-2's wpe(position_ids)
            return x + self.weight[torch.arange(x.shape[1])]
        return x + self.weight[0]


class ClassTokens(nn.Module):
    def __init__(self, count: int, features: tuple):
        super().__init__()
        self.tokens = nn.Parameter(torch.zeros(count, *features))

    def forward(self, x):
        return torch.cat([self.tokens.expand(x.shape[0], *self.tokens.shape), x], dim=1)


@builds("embedding")
def _embedding(layer, shape):
    return nn.Embedding(layer.vocab, layer.dim, padding_idx=layer.padding_idx)


@builds("pos_embedding", "type_embedding")
def _added(layer, shape):
    require_sequence(shape, layer.type_name)
    positional = layer.type_name == "pos_embedding"
    return AddedTable(layer.max_len if positional else layer.types, tuple(shape[1:]), positional)


@builds("class_token")
def _class_token(layer, shape):
    require_sequence(shape, "class_token")
    return ClassTokens(layer.count, tuple(shape[1:]))


@builds("to_tokens")
def _to_tokens(layer, shape):
    require_sequence(shape, "to_tokens")
    return Fn(lambda x: x.flatten(2).transpose(1, 2), "(N, C, *S) → (N, ∏S, C)")


@builds("to_image")
def _to_image(layer, shape):
    if len(shape) != 2:
        raise Refused(f"to_image takes tokens × channels (L, C), got rank {len(shape)}")
    n = shape[0]
    if layer.size is None:
        side = int(round(n ** 0.5))
        if side * side != n:
            raise Refused(f"{n} tokens are not a square")
        size = (side, side)
    else:
        size = (layer.size,) if isinstance(layer.size, int) else tuple(layer.size)
    return Fn(lambda x: x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *size), f"to {size}")


@builds("select_token")
def _select_token(layer, shape):
    require_sequence(shape, "select_token")
    index = layer.index
    return Fn(lambda x: x[:, index], f"token {index}")


@builds("token_mean")
def _token_mean(layer, shape):
    require_sequence(shape, "token_mean")
    return Fn(lambda x: x.mean(dim=1), "mean over tokens")
