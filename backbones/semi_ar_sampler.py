"""Batched, seeded LLaDA semi-autoregressive text sampling (GSAI-ML/LLaDA `generate`, as Lumina-DiMOO runs it).

The answer slots are split into blocks of `block_length`, decoded left to right with steps / num_blocks steps each;
a step reveals the block's uniform share of masks with the highest confidence (softmax prob of the drawn token, or
uniform noise for "random"). Tokens come from argmax(exp(l) / (-log u)^tau) in float64 (Gumbel-max at tau; tau 0 =
greedy). A row stops after a block that produced a stop id; its later slots stay masked and uncounted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from backbones.masked_diffusion import (
    Canvas,
    GeneratorArg,
    LogitsFn,
    SlotSample,
    StepScoring,
    TokenSpace,
    row_generators,
    slot_logits,
)

REMASKING = ("low_confidence", "random")
NOISE_LAYOUTS = ("sequence", "slots")


@dataclass(frozen=True)
class SemiARTextOptions:
    """steps: total decode steps (a multiple of the number of blocks); block_length divides the slot count;
    cfg_weight w of u + (w+1)(c - u) (0 = no uncond forward; the uncond canvas masks the prompt, as LLaDA does);
    stop_ids end a row after the block that holds one and bound its completion mask (e.g. LLaDA's EOS 126081).
    noise "sequence" draws the Gumbel noise over every real position x V like the original (parity, costly at
    large V: L x V float64 per row and step); "slots" only at the answer slots (same distribution, cheaper)."""

    steps: int
    block_length: int
    temperature: float = 0.0
    remasking: str = "low_confidence"
    cfg_weight: float = 0.0
    stop_ids: tuple[int, ...] = ()
    noise: str = "sequence"

    def __post_init__(self) -> None:
        if self.remasking not in REMASKING or self.noise not in NOISE_LAYOUTS:
            raise ValueError(
                f"remasking={self.remasking!r} / noise={self.noise!r}: use one of {REMASKING} / {NOISE_LAYOUTS}."
            )
        if self.steps < 1 or self.block_length < 1 or self.temperature < 0 or self.cfg_weight < 0:
            raise ValueError(
                f"steps={self.steps} and block_length={self.block_length} must be >= 1, temperature="
                f"{self.temperature} and cfg_weight={self.cfg_weight} >= 0."
            )

    def scoring(self) -> StepScoring:
        """The distribution tokens are drawn from: log_softmax(mixed / tau) (raw logits when greedy)."""
        return StepScoring(cfg_weight=self.cfg_weight, temperature=self.temperature, cfg_form="llada")

    def blocks(self, slots: int) -> tuple[int, int]:
        """(number of blocks, steps per block) for `slots` answer slots, with an error naming the fix."""
        if slots % self.block_length or self.steps % (slots // self.block_length):
            raise ValueError(
                f"answer slots={slots} must be a multiple of block_length={self.block_length}, and steps="
                f"{self.steps} a multiple of the number of blocks ({slots / self.block_length:g}); change "
                "max_new_tokens, block_length or steps."
            )
        return slots // self.block_length, self.steps // (slots // self.block_length)


def transfer_counts(masked: torch.Tensor, steps: int) -> torch.Tensor:
    """Tokens to reveal per step [B, steps] for `masked` [B] masks in a block: an even split, remainder first."""
    base, remainder = masked // steps, masked % steps
    counts = base.unsqueeze(1).repeat(1, steps)
    return counts + (torch.arange(steps, device=masked.device) < remainder.unsqueeze(1))


def uniform_at_slots(
    canvas: Canvas, trailing: tuple[int, ...], dtype: torch.dtype, generator: GeneratorArg, per_slot: bool
) -> torch.Tensor:
    """U[0, 1) noise [B, N, *trailing] at the slots, drawn as the original draws it over its sequence.

    One generator (or None): one draw over [B, L, *trailing]. One per row: row b draws over its real positions
    only, so its values do not depend on the padding of the batch (at batch 1, the same numbers). `per_slot`
    draws only [N, *trailing] per row instead."""
    ids, slots = canvas.ids, canvas.slots
    per_row = row_generators(generator, ids.shape[0])
    if per_slot:
        if per_row is None:
            return torch.rand((*slots.shape, *trailing), dtype=dtype, device=ids.device, generator=generator)
        shape = (slots.shape[1], *trailing)
        return torch.stack([torch.rand(shape, dtype=dtype, device=ids.device, generator=g) for g in per_row])
    if per_row is None:
        noise = torch.rand((*ids.shape, *trailing), dtype=dtype, device=ids.device, generator=generator)
        return noise[torch.arange(ids.shape[0], device=ids.device).unsqueeze(1), slots]  # [B, N, ...]
    real = canvas.real if canvas.real is not None else torch.ones_like(ids, dtype=torch.bool)
    rank = real.long().cumsum(1) - 1  # [B, L]: index of each real position among the row's real positions
    rows = []
    for row, row_generator in enumerate(per_row):
        count = int(real[row].sum())
        noise = torch.rand((count, *trailing), dtype=dtype, device=ids.device, generator=row_generator)
        rows.append(noise[rank[row, slots[row]]])
    return torch.stack(rows)


def draw_tokens(mixed: torch.Tensor, canvas: Canvas, options: SemiARTextOptions, generator: GeneratorArg):
    """Tokens [B, N] from mixed logits [B, N, V]: greedy at tau 0, else argmax(exp(l) / (-log u)^tau) in float64."""
    if options.temperature == 0:
        return mixed.argmax(-1)
    per_slot = options.noise == "slots"
    u = uniform_at_slots(canvas, (mixed.shape[-1],), torch.float64, generator, per_slot)  # [B, N, V]
    return (mixed.to(torch.float64).exp() / (-torch.log(u)) ** options.temperature).argmax(-1)


def confidence_of(
    mixed: torch.Tensor, drawn: torch.Tensor, canvas: Canvas, options: SemiARTextOptions, generator: GeneratorArg
) -> torch.Tensor:
    """Remasking confidence [B, N]: float64 softmax prob of the drawn token, or U[0, 1) ("random")."""
    if options.remasking == "random":
        return uniform_at_slots(canvas, (), torch.float32, generator, options.noise == "slots").to(torch.float64)
    probs = mixed.to(torch.float64).softmax(-1)
    return probs.gather(-1, drawn.unsqueeze(-1)).squeeze(-1)


def first_stop_mask(tokens: torch.Tensor, revealed: torch.Tensor, stop_ids: tuple[int, ...]) -> torch.Tensor:
    """[B, N] 1 on revealed slots up to and including the first stop id (all revealed when there is none)."""
    if not stop_ids:
        return revealed.long()
    is_stop = torch.isin(tokens, torch.tensor(stop_ids, device=tokens.device)) & revealed
    before = is_stop.long().cumsum(1) - is_stop.long()  # stops strictly before each slot
    return (revealed & (before == 0)).long()


@torch.no_grad()
def sample_semi_ar(
    logits_fn: LogitsFn,
    canvas: Canvas,
    space: TokenSpace,
    options: SemiARTextOptions,
    *,
    generator: GeneratorArg = None,
    uncond_logits_fn: LogitsFn | None = None,
) -> SlotSample:
    """Fill the canvas's answer slots block by block; one forward (+ one uncond) per step.

    `generator` as in `sample_maskgit` (None = the global RNG, like the original's `torch.rand_like`). Tokens
    are vocabulary ids minus `space.offset`; never-revealed slots (after a stop) are -1 with reveal step -1."""
    num_blocks, per_block = options.blocks(canvas.slots.shape[1])
    row_generators(generator, canvas.ids.shape[0])  # a wrong-length list fails before any forward
    current = canvas.initial()  # [B, N] ids
    unknown = current == space.mask_id
    tokens = torch.where(unknown, torch.full_like(current, -1), current - space.offset)
    reveal_step = torch.full_like(current, -1)
    logps = torch.zeros(current.shape, dtype=torch.float32, device=current.device)
    done = torch.zeros(current.shape[0], dtype=torch.bool, device=current.device)
    scoring, slot_index = options.scoring(), torch.arange(current.shape[1], device=current.device)
    for block in range(num_blocks):
        in_block = (slot_index >= block * options.block_length) & (slot_index < (block + 1) * options.block_length)
        counts = transfer_counts((unknown & in_block).sum(1), per_block)  # [B, per_block]
        for inner in range(per_block):
            step = block * per_block + inner
            mixed = slot_logits(logits_fn, canvas, current, space, scoring, uncond_logits_fn)  # [B, N, V]
            drawn = draw_tokens(mixed, canvas, options, generator)
            confidence = confidence_of(mixed, drawn, canvas, options, generator)
            confidence = confidence.masked_fill(~(unknown & in_block) | done.unsqueeze(1), float("-inf"))
            revealed = torch.zeros_like(unknown)
            for row in range(current.shape[0]):
                take = int(counts[row, inner]) if not bool(done[row]) else 0
                revealed[row, confidence[row].topk(take).indices] = True
            step_logps = scoring.log_probs(mixed).gather(-1, drawn.unsqueeze(-1)).squeeze(-1)
            tokens = torch.where(revealed, drawn, tokens)
            logps = torch.where(revealed, step_logps.float(), logps)
            reveal_step = torch.where(revealed, step, reveal_step)
            current = torch.where(revealed, drawn + space.offset, current)
            unknown = unknown & ~revealed
        if options.stop_ids:
            has_stop = torch.isin(tokens + space.offset, torch.tensor(options.stop_ids, device=tokens.device))
            done = done | (has_stop & (reveal_step >= 0)).any(1)
            if bool(done.all()):
                break
    stop_tokens = tuple(s - space.offset for s in options.stop_ids)
    mask = first_stop_mask(tokens, reveal_step >= 0, stop_tokens)
    return SlotSample(tokens, reveal_step, logps, mask, options.steps)


__all__ = ["NOISE_LAYOUTS", "REMASKING", "SemiARTextOptions", "sample_semi_ar", "transfer_counts"]
