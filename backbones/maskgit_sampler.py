"""Batched, seeded MaskGIT image sampling for masked-diffusion backbones, in two original schedules.

"lumina_dimoo" (Alpha-VLLM/Lumina-DiMOO `generate_image`): cosine keep_n of the initially masked count, tokens by
Gumbel-max on CFG logits / tau at masked slots, keep_n lowest `log p + tau * Gumbel` stay masked (noise not annealed).
"showo" (showlab/Show-o `Showo.t2i_generate`): multinomial draws at every slot, mask_len clamped to
[1, unknown - 1], selection noise annealed by tau *= (1 - (s+1)/T) each step (compounding, as the original), last
step reveals all. Noise is drawn in each original's order, so one generator at batch 1 gives the original's codes.
"""

from __future__ import annotations

import math
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

MASKGIT_SCHEDULES = ("lumina_dimoo", "showo")


@dataclass(frozen=True)
class MaskGitOptions:
    """steps: decode steps T; cfg_weight w of (1+w) c - w u (0 = no uncond forward); temperature: Lumina's tau on
    the token draw and the selection noise, Show-o's selection-noise scale only (its tokens come from softmax(c))."""

    steps: int
    schedule: str = "lumina_dimoo"
    cfg_weight: float = 0.0
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.schedule not in MASKGIT_SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is not supported; use one of {MASKGIT_SCHEDULES}.")
        if self.steps < 1 or self.cfg_weight < 0 or self.temperature < 0:
            raise ValueError(
                f"steps={self.steps} must be >= 1, cfg_weight={self.cfg_weight} and temperature={self.temperature} "
                ">= 0."
            )

    def scoring(self, conditional: bool = False) -> StepScoring:
        """The distribution the tokens are drawn from (`conditional`: its conditional branch alone, the cheaper
        `image_logprob: conditional` score)."""
        temperature = self.temperature if self.schedule == "lumina_dimoo" else 1.0
        return StepScoring(cfg_weight=None if conditional else self.cfg_weight, temperature=temperature)


def lumina_gumbel(shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gumbel(0, 1) noise as Lumina-DiMOO draws it: -log(-log(u + 1e-20) + 1e-20), u ~ U[0, 1) in `like`'s dtype."""
    u = torch.rand(shape, device=like.device, dtype=like.dtype, generator=generator)
    return -torch.log(-torch.log(u + 1e-20) + 1e-20)


def showo_gumbel(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gumbel(0, 1) noise as Show-o (muse-maskgit) draws it: -log(-log u), logs clamped at 1e-20."""
    u = torch.zeros_like(like).uniform_(0, 1, generator=generator)
    return -torch.log((-torch.log(u.clamp(min=1e-20))).clamp(min=1e-20))


def lumina_draw(
    logits: torch.Tensor, keep_n: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Lumina-DiMOO step on R rows with n masked slots each: logits [R, n, C] -> (tokens [R, n], stay [R, n]).

    Order of draws (the original's): token Gumbel over [R, n, C], then selection Gumbel over [R, n]."""
    if temperature == 0:
        tokens = logits.argmax(-1)
    else:
        tokens = (logits / temperature + lumina_gumbel(logits.shape, logits, generator)).argmax(-1)
    conf = logits.softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # [R, n], no tau (as the original)
    confidence = torch.log(conf.clamp_min(1e-20)) + temperature * lumina_gumbel(conf.shape, conf, generator)
    cut_index = keep_n.long().unsqueeze(1).clamp(0, conf.shape[1] - 1)  # [R, 1]
    cut_off = confidence.sort(-1).values.gather(1, cut_index)
    return tokens, confidence < cut_off


def lumina_keep_n(step: int, steps: int, initial_masked: torch.Tensor) -> torch.Tensor:
    """Slots still masked after `step` [R]: floor(N0 cos(pi/2 (s+1)/T)) >= 1 in float32, 0 at the last step."""
    if step == steps - 1:
        return torch.zeros_like(initial_masked)
    frac = torch.cos(0.5 * math.pi * torch.tensor([(step + 1) / steps], device=initial_masked.device))
    return (initial_masked.float() * frac).floor().clamp_min(1).long()


def lumina_step(
    mixed: torch.Tensor, unknown: torch.Tensor, keep_n: torch.Tensor, tau: float, generator: GeneratorArg
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lumina-DiMOO step on the batch: mixed [B, N, C] -> (tokens [B, N] at unknown slots, revealed [B, N])."""
    batch, slots = unknown.shape
    tokens = torch.zeros_like(unknown, dtype=torch.long)
    revealed = torch.zeros_like(unknown)
    per_row = row_generators(generator, batch)
    if per_row is None:
        counts = unknown.sum(1)
        if bool((counts != counts[0]).any()):
            raise ValueError("generator: rows with different masked counts need one generator per row (a list).")
        masked = mixed[unknown].view(batch, -1, mixed.shape[-1])  # [B, n, C]
        row_tokens, stay = lumina_draw(masked, keep_n, tau, generator)
        tokens[unknown], revealed[unknown] = row_tokens.reshape(-1), ~stay.reshape(-1)
        return tokens, revealed
    for row, row_generator in enumerate(per_row):
        where = unknown[row]
        row_tokens, stay = lumina_draw(mixed[row, where].unsqueeze(0), keep_n[row : row + 1], tau, row_generator)
        tokens[row, where], revealed[row, where] = row_tokens[0], ~stay[0]
    return tokens, revealed


def showo_multinomial(probs: torch.Tensor, generator: GeneratorArg) -> torch.Tensor:
    """One draw per slot from probs [B, N, C] (one multinomial over all rows, or per row with its generator)."""
    batch, slots, size = probs.shape
    per_row = row_generators(generator, batch)
    if per_row is None:
        return torch.multinomial(probs.reshape(-1, size), 1, generator=generator)[:, 0].view(batch, slots)
    return torch.stack([torch.multinomial(p, 1, generator=g)[:, 0] for p, g in zip(probs, per_row)])


def showo_selection_noise(like: torch.Tensor, generator: GeneratorArg) -> torch.Tensor:
    """Gumbel noise [B, N] over every slot (known ones too, as the original draws it)."""
    per_row = row_generators(generator, like.shape[0])
    if per_row is None:
        return showo_gumbel(like, generator)
    return torch.stack([showo_gumbel(row, g) for row, g in zip(like, per_row)])


def showo_step(
    mixed: torch.Tensor,
    unknown: torch.Tensor,
    known_tokens: torch.Tensor,
    step: int,
    steps: int,
    noise_scale: float,
    generator: GeneratorArg,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Show-o step: mixed [B, N, C] -> (tokens [B, N], revealed [B, N]); the last step reveals every unknown slot."""
    probs = mixed.softmax(-1)  # [B, N, C]
    sampled = torch.where(unknown, showo_multinomial(probs, generator), known_tokens)
    ratio = (step + 1) / steps
    mask_ratio = torch.cos(torch.tensor(ratio) * math.pi * 0.5)
    selected = probs.gather(-1, sampled.unsqueeze(-1)).squeeze(-1)
    selected = torch.where(unknown, selected, torch.finfo(selected.dtype).max)
    mask_len = (unknown.shape[1] * mask_ratio).floor().unsqueeze(0).to(mixed.device)
    mask_len = torch.max(
        torch.tensor([1], device=mixed.device), torch.min(unknown.sum(-1, keepdim=True) - 1, mask_len)
    )
    confidence = torch.log(selected.clamp(min=1e-20)) + noise_scale * showo_selection_noise(selected, generator)
    cut_off = confidence.sort(-1).values.gather(1, mask_len.long())
    stay = (confidence < cut_off) & unknown
    revealed = unknown if step == steps - 1 else unknown & ~stay
    return sampled, revealed


@torch.no_grad()
def sample_maskgit(
    logits_fn: LogitsFn,
    canvas: Canvas,
    space: TokenSpace,
    options: MaskGitOptions,
    *,
    generator: GeneratorArg = None,
    uncond_logits_fn: LogitsFn | None = None,
) -> SlotSample:
    """Fill the canvas's masked slots over `options.steps` MaskGIT steps; one forward (+ one uncond) per step.

    `generator`: one torch.Generator for the batch (the original's draw order over [B, ...] tensors), a list with
    one per row (row b's draws come from generator[b] only, so its codes do not depend on the other rows), or None
    (the global RNG). Returns tokens as codes (id - space.offset), the reveal step and the sampler's log-prob of
    each code under log_softmax(mixed / tau) (Lumina) or log_softmax(mixed) (Show-o)."""
    current = canvas.initial()  # [B, N] ids
    row_generators(generator, canvas.ids.shape[0])  # a wrong-length list fails before any forward
    unknown = current == space.mask_id
    initial_masked = unknown.sum(1)  # [B]
    tokens = torch.where(unknown, torch.full_like(current, -1), current - space.offset)
    reveal_step = torch.full_like(current, -1)
    logps = torch.zeros(current.shape, dtype=torch.float32, device=current.device)
    scoring, noise_scale = options.scoring(), options.temperature
    for step in range(options.steps):
        if not bool(unknown.any()):
            break
        mixed = slot_logits(logits_fn, canvas, current, space, scoring, uncond_logits_fn)  # [B, N, C]
        if options.schedule == "lumina_dimoo":
            keep_n = lumina_keep_n(step, options.steps, initial_masked)
            drawn, revealed = lumina_step(mixed, unknown, keep_n, options.temperature, generator)
        else:
            noise_scale = noise_scale * (1.0 - (step + 1) / options.steps)
            drawn, revealed = showo_step(mixed, unknown, tokens, step, options.steps, noise_scale, generator)
        step_logps = scoring.log_probs(mixed).gather(-1, drawn.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        tokens = torch.where(revealed, drawn, tokens)
        logps = torch.where(revealed, step_logps.float(), logps)
        reveal_step = torch.where(revealed, step, reveal_step)
        current = torch.where(revealed, drawn + space.offset, current)
        unknown = unknown & ~revealed
    return SlotSample(tokens, reveal_step, logps, (reveal_step >= 0).long(), options.steps)


__all__ = ["MASKGIT_SCHEDULES", "MaskGitOptions", "lumina_keep_n", "sample_maskgit"]
