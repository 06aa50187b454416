"""A deterministic toy "model" for masked-diffusion sampler tests: ids [B, L] -> logits [B, L, V], no weights on disk.

Logits depend on each token, its position among the row's real (non-pad) tokens and the mean of the row's real
tokens, so the decode state matters and padding does not. The parity fixture builder feeds the same function to
the original samplers; the tests feed it to ours. `ToyModel` is a differentiable version (a gradient test).
"""

from __future__ import annotations

from functools import lru_cache

import torch

WIDTH = 8


@lru_cache(maxsize=8)
def toy_tables(vocab: int, seed: int = 0, positions: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(token table [V, D], position table [P, D], head [D, V]) from a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    embed = torch.randn(vocab, WIDTH, generator=generator)
    position = torch.randn(positions, WIDTH, generator=generator)
    head = torch.randn(WIDTH, vocab, generator=generator) * 1.5
    return embed, position, head


def toy_logits(ids: torch.Tensor, vocab: int, real: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Float32 logits [B, L, V] for ids [B, L]; `real` [B, L] bool marks non-pad tokens (None: all real)."""
    embed, position, head = toy_tables(vocab, seed)
    return toy_forward(ids, real, embed, position, head)


def toy_forward(ids, real, embed, position, head) -> torch.Tensor:
    real = torch.ones_like(ids, dtype=torch.bool) if real is None else real
    rank = (real.long().cumsum(1) - 1).clamp(min=0)  # [B, L] position among real tokens
    hidden = embed[ids] + position[rank]  # [B, L, D]
    weights = real.unsqueeze(-1).float()
    context = (hidden * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True)  # [B, 1, D]
    return torch.tanh(hidden + context) @ head  # [B, L, V]


class ToyModel(torch.nn.Module):
    """`toy_logits` with trainable tables (starting at the same values)."""

    def __init__(self, vocab: int, seed: int = 0):
        super().__init__()
        embed, position, head = toy_tables(vocab, seed)
        self.embed = torch.nn.Parameter(embed.clone())
        self.position = torch.nn.Parameter(position.clone())
        self.head = torch.nn.Parameter(head.clone())

    def forward(self, ids: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return toy_forward(ids, real, self.embed, self.position, self.head)
