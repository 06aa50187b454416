"""Masked-diffusion sampling records and their trajectory log-probs, for any model given as a logits function.

A sampler (`backbones.maskgit_sampler`, `backbones.semi_ar_sampler`) fills the N masked slots of a `Canvas` over T
decode steps and returns a `SlotSample`: per row the tokens, the step that revealed each, and the sampler's log-prob.
`trajectory_logps` rebuilds each step's partially masked state from that record and rescores the tokens revealed
there, with grad (TraceRL-style trajectory log-probs, dLLM-RL; equal to the sampler's at an unchanged model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from backbones.interface import GeneratedImages, ImageSampling, Rollout

GeneratorArg = torch.Generator | list[torch.Generator] | None


@dataclass(frozen=True)
class AtSlots:
    """Wraps `fn(ids [B, L], slots [B, N]) -> logits [B, N, V]` at the slots only: pass `AtSlots(fn)` wherever a
    `LogitsFn` goes to skip the vocabulary head at prompt positions (Lumina-DiMOO's head is 134548 wide)."""

    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ids [B, L] long -> logits [B, L, V]: a closure holding the model and its attention mask (no model import here);
# or `AtSlots`.
LogitsFn = Callable[[torch.Tensor], torch.Tensor] | AtSlots


def logits_at(logits_fn: LogitsFn, ids: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """[B, N, V] logits of `ids` [B, L] at `slots` [B, N]."""
    if isinstance(logits_fn, AtSlots):
        return logits_fn.fn(ids, slots)
    logits = logits_fn(ids)  # [B, L, V]
    return logits.gather(1, slots.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))


CFG_FORMS = ("maskgit", "llada")


@dataclass(frozen=True)
class TokenSpace:
    """Which ids the slots hold: token t of the sampled space is id `offset + t`, scored over logits
    [offset, offset + size) (size None: to the end of the vocabulary). Images: offset = first image-code id."""

    mask_id: int
    offset: int = 0
    size: int | None = None

    def logits_slice(self, logits: torch.Tensor) -> torch.Tensor:
        end = None if self.size is None else self.offset + self.size
        return logits[..., self.offset : end]


@dataclass
class Canvas:
    """Sequences the sampler writes into: `ids` [B, L] with slot positions `slots` [B, N] (slot j of row b is
    ids[b, slots[b, j]]; mask_id there = still to sample, anything else = given). For CFG, `uncond_ids` [B, L']
    with `uncond_slots` [B, N]: the same slots in the unconditional sequence (its own prefix and positions).
    `real` [B, L] bool marks non-pad positions (the text sampler draws its noise per real position, as the
    batch-1 original does over its whole sequence; None = all real)."""

    ids: torch.Tensor
    slots: torch.Tensor
    uncond_ids: torch.Tensor | None = None
    uncond_slots: torch.Tensor | None = None
    real: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.ids.dim() != 2 or self.slots.dim() != 2 or self.slots.shape[0] != self.ids.shape[0]:
            raise ValueError(
                f"Canvas: ids {tuple(self.ids.shape)} must be [B, L] and slots {tuple(self.slots.shape)} [B, N]."
            )
        if (self.uncond_ids is None) != (self.uncond_slots is None):
            raise ValueError("Canvas: give both uncond_ids and uncond_slots, or neither.")
        if self.uncond_slots is not None and self.uncond_slots.shape != self.slots.shape:
            raise ValueError(
                f"Canvas: uncond_slots {tuple(self.uncond_slots.shape)} must match slots {tuple(self.slots.shape)}."
            )

    @classmethod
    def from_record(cls, record: dict[str, torch.Tensor]) -> Canvas:
        """The canvas a backbone's image `Rollout.record` keeps: input_ids, slots, uncond_input_ids, uncond_slots."""
        return cls(record["input_ids"], record["slots"], record["uncond_input_ids"], record["uncond_slots"])

    def written(self, slot_ids: torch.Tensor, uncond: bool = False) -> torch.Tensor:
        """A copy of the (uncond) sequences with `slot_ids` [B, N] (vocabulary ids) at the slots."""
        ids, slots = (self.uncond_ids, self.uncond_slots) if uncond else (self.ids, self.slots)
        return ids.scatter(1, slots, slot_ids)

    def initial(self) -> torch.Tensor:
        """The ids at the slots before sampling [B, N]."""
        return self.ids.gather(1, self.slots)


@dataclass
class SlotSample:
    """What a masked-diffusion sampler returns, all [B, N] in slot order (what `Rollout` rows hold).

    tokens: sampled tokens in the `TokenSpace` (id - offset; given slots keep theirs; never-revealed = -1).
    reveal_step: the decode step at which each slot was revealed (-1: given, or never revealed: after an EOS stop).
    logps: the sampler's log-prob of each revealed token under the distribution it drew from, 0 elsewhere.
    completion_mask: 1 on slots the loss counts (revealed, and for text up to and including the first stop id).
    """

    tokens: torch.Tensor
    reveal_step: torch.Tensor
    logps: torch.Tensor
    completion_mask: torch.Tensor
    steps: int

    @classmethod
    def recorded(cls, tokens: torch.Tensor, reveal_step: torch.Tensor, steps: int) -> SlotSample:
        """A rollout's actions as `trajectory_logps` reads them. Every revealed slot is scored (the caller masks
        afterwards), so the number of forwards depends only on the schedule: equal on every ZeRO-3 rank."""
        if int(reveal_step.max()) >= steps:
            raise ValueError(
                f"the rollout was sampled with more than steps={steps} decode steps; score it with the sampler's "
                "steps (image_steps / text_steps)."
            )
        revealed = (reveal_step >= 0).long()
        return cls(tokens, reveal_step, torch.zeros_like(tokens, dtype=torch.float32), revealed, steps)


@dataclass(frozen=True)
class StepScoring:
    """The per-step distribution the sampler drew from: `log_softmax(guided / temperature)` over the token space.

    cfg_weight None or 0 = conditional only. cfg_form "maskgit": (1+w) c - w u (Lumina-DiMOO and Show-o images);
    "llada": u + (w+1)(c - u) (LLaDA text; the same number, written as the original writes it).
    temperature 0 (greedy) scores the raw logits."""

    cfg_weight: float | None = None
    temperature: float = 1.0
    cfg_form: str = "maskgit"

    def __post_init__(self) -> None:
        if self.cfg_form not in CFG_FORMS:
            raise ValueError(f"cfg_form={self.cfg_form!r} is not supported; use one of {CFG_FORMS}.")
        if self.temperature < 0 or (self.cfg_weight is not None and self.cfg_weight < 0):
            raise ValueError(f"temperature={self.temperature} and cfg_weight={self.cfg_weight} must be >= 0.")

    @property
    def guided(self) -> bool:
        return bool(self.cfg_weight)

    def mix(self, cond: torch.Tensor, uncond: torch.Tensor | None) -> torch.Tensor:
        """CFG-mixed logits (cond alone when unguided)."""
        if not self.guided:
            return cond
        w = self.cfg_weight
        if self.cfg_form == "llada":
            return uncond + (w + 1) * (cond - uncond)
        return (1 + w) * cond - w * uncond

    def log_probs(self, mixed: torch.Tensor) -> torch.Tensor:
        """log_softmax over the last dim of temperature-scaled logits (float32 or wider)."""
        scaled = mixed if self.temperature == 0 else mixed / self.temperature
        return scaled.log_softmax(-1)


def slot_logits(
    logits_fn: LogitsFn,
    canvas: Canvas,
    slot_ids: torch.Tensor,
    space: TokenSpace,
    scoring: StepScoring,
    uncond_logits_fn: LogitsFn | None = None,
) -> torch.Tensor:
    """CFG-mixed logits [B, N, V'] over the token space at the slots of the state `slot_ids` [B, N] (ids)."""
    cond = in_space(logits_at(logits_fn, canvas.written(slot_ids), canvas.slots), space)  # [B, N, V']
    uncond = None
    if scoring.guided:
        if canvas.uncond_ids is None:
            raise ValueError(f"cfg_weight={scoring.cfg_weight} needs Canvas.uncond_ids / uncond_slots.")
        uncond_ids = canvas.written(slot_ids, uncond=True)
        uncond = in_space(logits_at(uncond_logits_fn or logits_fn, uncond_ids, canvas.uncond_slots), space)
    return scoring.mix(cond, uncond)


def in_space(logits: torch.Tensor, space: TokenSpace) -> torch.Tensor:
    """Slot logits [B, N, V] restricted to the token space [B, N, V'], in float32 (or wider)."""
    picked = space.logits_slice(logits)
    return picked if picked.dtype in (torch.float32, torch.float64) else picked.float()


def state_ids(canvas: Canvas, tokens: torch.Tensor, reveal_step: torch.Tensor, step: int, space: TokenSpace):
    """Slot ids [B, N] of the state before decode step `step`: given slots, and tokens revealed before `step`;
    everything else masked."""
    initial = canvas.initial()
    revealed = (reveal_step >= 0) & (reveal_step < step)
    return torch.where(revealed, tokens + space.offset, initial)


def trajectory_logps(
    logits_fn: LogitsFn,
    canvas: Canvas,
    sample: SlotSample,
    space: TokenSpace,
    scoring: StepScoring,
    *,
    step_group: int = 1,
    uncond_logits_fn: LogitsFn | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs [B, N] of the revealed tokens, each scored at the state of its decode step, and their mask [B, N].

    `canvas` is the sampler's starting canvas (slots masked). One forward (two with CFG) per group of
    `step_group` consecutive steps: tokens revealed in steps [v, v + g) are scored at the state before step v
    (g = 1 reproduces the sampler's log-probs exactly; g = T scores all at the all-masked state, d1-like). With
    grad when enabled. Log-probs are 0 where the mask is 0.
    """
    if step_group < 1:
        raise ValueError(f"step_group={step_group} must be >= 1.")
    mask = sample.completion_mask.bool() & (sample.reveal_step >= 0)
    logps = None
    for start in range(0, sample.steps, step_group):
        in_group = mask & (sample.reveal_step >= start) & (sample.reveal_step < start + step_group)  # [B, N]
        if not bool(in_group.any()):
            continue
        state = state_ids(canvas, sample.tokens, sample.reveal_step, start, space)
        mixed = slot_logits(logits_fn, canvas, state, space, scoring, uncond_logits_fn)  # [B, N, V']
        token_logps = scoring.log_probs(mixed).gather(-1, sample.tokens.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        token_logps = token_logps.float() * in_group
        logps = token_logps if logps is None else logps + token_logps
    if logps is None:
        logps = torch.zeros(sample.tokens.shape, dtype=torch.float32, device=sample.tokens.device)
    return logps, mask.long()


def image_rollout(
    sample: SlotSample, record: dict[str, torch.Tensor], options: ImageSampling, pixels: torch.Tensor | None
) -> GeneratedImages:
    """An image `SlotSample` as the trainer reads it: the codes, the reveal order kept in `record` (the loss rescores
    from it) and the sampler's log-probs only where the loss scores the CFG mix they were drawn from."""
    record["unmask_step"] = sample.reveal_step  # [N, I]
    logps = sample.logps if options.logprob == "cfg" else None
    return GeneratedImages(Rollout(sample.tokens, torch.ones_like(sample.tokens), logps, record), pixels)


def row_generators(generator: GeneratorArg, rows: int) -> list[torch.Generator] | None:
    """The per-row generators of a list argument (checked against the batch), else None (one shared stream)."""
    if not isinstance(generator, list | tuple):
        return None
    if len(generator) != rows:
        raise ValueError(f"generator: got {len(generator)} generators for {rows} rows; give one per row.")
    return list(generator)


__all__ = [
    "CFG_FORMS",
    "AtSlots",
    "Canvas",
    "GeneratorArg",
    "LogitsFn",
    "SlotSample",
    "StepScoring",
    "TokenSpace",
    "image_rollout",
    "in_space",
    "logits_at",
    "row_generators",
    "slot_logits",
    "state_ids",
    "trajectory_logps",
]
