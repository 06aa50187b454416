"""What the trainers and evaluation drivers need from a unified model, and nothing else.

A backbone turns prompts into rollouts (K answers / K images per pair row) with the sampler's own per-action
log-probs, rescores those actions with grad for the loss, decodes images to pixels, saves and loads itself. The loss
and the advantages only see per-action log-probs [N, L] and masks [N, L]: one action per autoregressive step for
Janus-Pro, the tokens revealed at each decode step for a masked-diffusion model. Everything a backbone needs to
rescore its own actions travels in `Rollout.record` (opaque to the trainer, split by rows with the batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import torch
from PIL import Image

IMAGE_LOGPROB_MODES = ("cfg", "conditional")


@dataclass(frozen=True)
class ImageSampling:
    """How images are sampled and how their tokens are scored by the loss (one object instead of ten arguments).

    `logprob`: "cfg" scores the CFG-mixed, temperature-scaled distribution that drew the tokens (exactly
    on-policy), "conditional" the conditional branch alone (cheaper). `steps` and `step_group` only mean something
    to masked-diffusion backbones (decode steps; decode steps scored per loss forward); `decode` only to Janus-Pro
    (its compiled or eager KV-cache loop; None = compiled on CUDA, eager elsewhere).
    """

    cfg_weight: float = 5.0
    temperature: float = 1.0
    top_k: int | None = None
    logprob: str = "cfg"
    steps: int | None = None
    step_group: int = 1
    decode: str | None = None

    def __post_init__(self) -> None:
        if self.logprob not in IMAGE_LOGPROB_MODES:
            raise ValueError(f"image logprob={self.logprob!r} is not supported; use one of {IMAGE_LOGPROB_MODES}.")
        if self.cfg_weight < 0 or self.temperature <= 0:
            raise ValueError(f"cfg_weight={self.cfg_weight} must be >= 0 and temperature={self.temperature} > 0.")
        if self.step_group < 1 or (self.steps is not None and self.steps < 1):
            raise ValueError(f"steps={self.steps} and step_group={self.step_group} must be >= 1.")

    @property
    def scored_cfg_weight(self) -> float | None:
        """The CFG weight of the distribution the loss scores (None: conditional only)."""
        return self.cfg_weight if self.logprob == "cfg" else None


@dataclass(frozen=True)
class AnswerSampling:
    """How answers are sampled (and scored: the loss divides logits by the same temperature, as TRL does).

    `do_sample=False` is greedy decoding (evaluation, UniRL's greedy judge). `steps` / `block_length` /
    `step_group` only mean something to masked-diffusion text samplers; `decode` only to Janus-Pro.
    `system_prompt` None means the backbone's own default. `one_token` is the one-token evaluation mode of
    Lumina-DiMOO's VLMEvalKit wrapper: one greedy answer token in one decode step (needs max_new_tokens=1 and
    do_sample=False), laid out as each backbone's original wrapper lays it out (Janus-Pro: plain greedy decoding).
    """

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    do_sample: bool = True
    system_prompt: str | None = None
    steps: int | None = None
    block_length: int | None = None
    step_group: int = 1
    decode: str | None = None
    one_token: bool = False

    def __post_init__(self) -> None:
        if self.one_token and (self.max_new_tokens != 1 or self.do_sample or (self.steps or 1) != 1):
            raise ValueError(
                f"one_token answers are one greedy token in one step: got max_new_tokens={self.max_new_tokens}, "
                f"do_sample={self.do_sample}, steps={self.steps}; use max_new_tokens=1, do_sample=False, steps None."
            )
        if self.max_new_tokens < 1 or self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError(
                f"max_new_tokens={self.max_new_tokens} must be >= 1, temperature={self.temperature} > 0 and "
                f"top_p={self.top_p} in (0, 1]."
            )
        if self.step_group < 1:
            raise ValueError(f"step_group={self.step_group} must be >= 1.")


@dataclass
class Rollout:
    """N sampled completions (answers or images) of one task, as the loss and the log-prob passes read them.

    `record` holds what the backbone needs to rescore these exact actions (prompt ids, masks, pixels or image
    codes, a masked-diffusion reveal order...): tensors with N rows first, never interpreted by the trainer.
    `sampling_logps` is None when the sampler's distribution is not the one the loss scores (then the
    sampler-vs-recomputed gap is not logged).
    """

    completion_ids: torch.Tensor  # [N, L] sampled answer tokens / image codes
    completion_mask: torch.Tensor  # [N, L] 1 on actions the loss counts
    sampling_logps: torch.Tensor | None  # [N, L] the sampler's log-prob of each action, 0 where masked
    record: dict[str, torch.Tensor] = field(default_factory=dict)

    def rows(self, index: slice) -> Rollout:
        """The same rollout restricted to rows `index`."""
        take = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "record"}
        take = {k: (v[index] if isinstance(v, torch.Tensor) else v) for k, v in take.items()}
        return Rollout(**take, record={k: v[index] for k, v in self.record.items()})


@dataclass
class GeneratedImages:
    """An image rollout in the forms other steps read: the actions, and the decoded pixels [N, 3, H, W] in [-1, 1]
    (None when the caller asked the sampler not to decode)."""

    rollout: Rollout
    pixels: torch.Tensor | None


@runtime_checkable
class Backbone(Protocol):
    """One unified model family behind the trainer. `model` is always passed in: the trainer decides which one
    (the unwrapped policy, the reference, a frozen judge) and the backbone never holds it.

    Implementations live in their own package (`janus.backbone.JanusBackbone`, ...) and are found through
    `backbones.registry`.
    """

    name: ClassVar[str]
    # Trainable-module groups -> parameter-name prefixes, for freezing and per-group learning rates.
    module_groups: ClassVar[Mapping[str, tuple[str, ...]]]

    @classmethod
    def load(
        cls, path: str | Path, dtype: torch.dtype | str | None = None, device: str | torch.device | None = None
    ) -> tuple[Backbone, torch.nn.Module]:
        """(backbone, model) from a local checkpoint folder in the family's original layout (or its HF layout)."""
        ...

    def save(self, model: torch.nn.Module, out_dir: str | Path, state_dict: dict | None = None) -> None:
        """A folder `load` reads; `state_dict` (ZeRO-3's gathered weights) replaces the model's own when given."""
        ...

    def export_original(self, model: torch.nn.Module, out_dir: str | Path) -> None:
        """The family's original checkpoint layout, for its official code."""
        ...

    @property
    def pad_id(self) -> int:
        """Completion pad id (answers of different lengths are right-padded with it)."""
        ...

    def sample_images(
        self,
        model: torch.nn.Module,
        prompts: Sequence[str],
        options: ImageSampling,
        generator: torch.Generator | list[torch.Generator] | None = None,
        decode: bool = True,
    ) -> GeneratedImages:
        """One image per prompt (no grad), with the sampler's log-probs and (with `decode`) the decoded pixels.

        `decode=False` leaves `pixels` None, for callers that decode in batches of their own (the benchmark
        drivers decode per prompt so the PNGs do not depend on how many prompts shared a sampler call)."""
        ...

    def sample_answers(
        self,
        model: torch.nn.Module,
        questions: Sequence[str],
        images: Sequence[Image.Image | None],
        options: AnswerSampling,
        generated: GeneratedImages | None = None,
        own_image: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Rollout:
        """One answer per (question, image) (no grad). Rows flagged `own_image` [N] bool answer about the image
        generated in their row (`generated`, UniRL) instead of `images[i]` (None there). `generator` seeds the
        draws (None: the global RNG, as in training). `record["input_ids"]` holds the prompt tokens [N, T]."""
        ...

    def answer_rollout(
        self,
        questions: Sequence[str],
        images: Sequence[Image.Image | None],
        answers: Sequence[str],
        options: AnswerSampling,
        generated: GeneratedImages | None = None,
        own_image: torch.Tensor | None = None,
    ) -> Rollout:
        """Given (gold) answers as a rollout the log-prob pass can score: the SFT target. No model call."""
        ...

    def answer_logps(self, model: torch.nn.Module, rollout: Rollout, options: AnswerSampling) -> torch.Tensor:
        """[N, L] log-probs of `rollout`'s answer actions under `model` (with grad when enabled), 0 where masked."""
        ...

    def image_logps(self, model: torch.nn.Module, rollout: Rollout, options: ImageSampling) -> torch.Tensor:
        """[N, L] log-probs of `rollout`'s image actions under `model`, of the distribution `options.logprob` names."""
        ...

    def decode_images(self, model: torch.nn.Module, completion_ids: torch.Tensor) -> torch.Tensor:
        """Image codes [N, L] -> pixels [N, 3, H, W] in [-1, 1]."""
        ...

    def decode_answers(self, completion_ids: torch.Tensor) -> list[str]:
        """Answer tokens [N, L] -> text (special and pad tokens dropped)."""
        ...


def to_pil(pixels: torch.Tensor) -> list[Image.Image]:
    """Pixels [N, 3, H, W] in [-1, 1] -> RGB PIL images (what every backbone's `decode_images` returns)."""
    array = ((pixels.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # [N, 3, H, W]
    return [Image.fromarray(img.permute(1, 2, 0).cpu().numpy()) for img in array]


def trainable_prefixes(backbone: type[Backbone] | Backbone, groups: Sequence[str]) -> list[str]:
    """Parameter-name prefixes of `groups`, with an error naming the backbone's groups for an unknown one."""
    known = backbone.module_groups
    unknown = [g for g in groups if g not in known]
    if unknown or not groups:
        raise ValueError(
            f"trainable_modules={list(groups)} contains unknown groups {unknown} or is empty for backbone "
            f"{backbone.name!r}; use a non-empty subset of {list(known)}."
        )
    return [p for g in groups for p in known[g]]


def freeze_modules(model: torch.nn.Module, prefixes: Sequence[str]) -> tuple[int, int]:
    """requires_grad = (name under one of `prefixes`); returns (trainable, frozen) parameter counts."""
    trainable = frozen = 0
    for name, param in model.named_parameters():
        keep = any(name == p or name.startswith(p + ".") for p in prefixes)
        param.requires_grad_(keep)
        trainable += param.numel() if keep else 0
        frozen += 0 if keep else param.numel()
    return trainable, frozen


def groups_frozen(model: torch.nn.Module, prefixes: Sequence[str]) -> bool:
    """Whether no parameter under `prefixes` trains (LoRA adapters included)."""
    heads = tuple(p + "." for p in prefixes)
    return not any(p.requires_grad for name, p in model.named_parameters() if name.startswith(heads))
