"""Choosing tokens from logits, for the eager and the compiled decode alike: filtering, the exponential race.

The race (argmax of logits - log Exp(1) noise) is a draw from softmax(logits) with fixed shapes and no host sync;
its noise is drawn from one shared generator or one generator per row, outside any captured graph.
"""

from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float) -> torch.Tensor:
    """Top-k then nucleus (top-p) filtering of [R, V] logits; removed entries become -inf."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # [R, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = sorted_logits.softmax(-1)
        # Drop a token when the tokens ranked above it already cover top_p (the top token always stays).
        drop_sorted = sorted_probs.cumsum(-1) - sorted_probs > top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def draw_race_noise(noise: torch.Tensor, generator: torch.Generator | list[torch.Generator] | None) -> torch.Tensor:
    """Fill `noise` [R, V] in place with Exp(1) draws: all rows from one generator, or row r from generator[r].

    The eager and the compiled decode (janus.static_decode) both draw through here, outside any captured graph,
    so the same generators give both paths the same random numbers.
    """
    if isinstance(generator, list | tuple):
        for row, row_generator in zip(noise, generator):
            row.exponential_(generator=row_generator)
    else:
        noise.exponential_(generator=generator)
    return noise


def race_tokens(logits: torch.Tensor, noise: torch.Tensor) -> torch.LongTensor:
    """One draw per row from softmax(logits) [R, V] given Exp(1) `noise` [R, V]: the exponential race.

    argmax_v p_v / E_v is distributed as p (E_v / p_v ~ Exp(p_v); the smallest wins with probability p_v / sum p),
    and argmax(logits - log E) is the same argmax without the softmax. Unlike `torch.multinomial` it has fixed
    shapes and no host sync, so it runs inside a CUDA graph; -inf (filtered) logits never win.
    """
    return (logits - noise.log()).argmax(-1)


def pick_tokens(
    logits: torch.Tensor,
    *,
    do_sample: bool,
    top_k: int | None,
    top_p: float,
    generator: torch.Generator | list[torch.Generator] | None,
    return_logps: bool,
) -> tuple[torch.LongTensor, torch.Tensor | None]:
    """Choose one token per row of temperature-scaled float32 logits [R, V].

    `generator` is one generator for all rows, or a list with one per row: row r then draws from generator[r] only,
    so its tokens do not depend on the other rows of the batch (R small draws per step instead of one).
    The returned log-prob is under the *unfiltered* distribution softmax(logits): top-k/top-p only truncate what
    can be drawn, and the loss-side forward (janus.logprobs) knows nothing about them, as in TRL.
    """
    if do_sample:
        noise = draw_race_noise(torch.empty_like(logits, dtype=torch.float32), generator)  # [R, V]
        tokens = race_tokens(filter_logits(logits, top_k, top_p), noise)  # [R]
    else:
        tokens = logits.argmax(-1)  # [R]
    logps = chosen_logps(logits, tokens) if return_logps else None
    return tokens, logps


def chosen_logps(logits: torch.Tensor, tokens: torch.LongTensor) -> torch.Tensor:
    """log softmax(logits) [R, V] at `tokens` [R] -> [R]."""
    return logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


__all__ = ["chosen_logps", "draw_race_noise", "filter_logits", "pick_tokens", "race_tokens"]
