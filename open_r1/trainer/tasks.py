"""The two PairGRPO tasks as data: how each one rolls out, which tensors its loss needs, how its log-probs are scored.

A task is a `TaskSpec`; the trainer loops over `TASK_SPECS` (rollout order: images first, so an understanding row may
ask about the image generated in the same repeated row, see `with_generated_images`) and never branches on a task
name. UniRL (arXiv 2505.23380) differs only in its data and rewards: a self row's understanding rollout answers about
its own generated image, and the generation rewards read a judge's answers about each image (`after_rollouts`).
A task's tensors travel in a `TaskBatch`, flattened to `"<task>/<field>"` keys for TRL's generation buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch

import janus
from janus.forward import image_features
from janus.static_decode import default_decode
from open_r1.trainer.rollout import PairRows
from rewards.reward_unirl import greedy_answers, select_judge_answers

PROMPT = "prompt"


@dataclass
class TaskBatch:
    """One task's rollouts on this rank (N rows, L completion tokens): what the loss and the log-prob passes read."""

    prompt: dict[str, torch.Tensor]  # the janus batch fields of the prompts (+ `features` when reused), [N, ...]
    completion_ids: torch.Tensor  # [N, L] sampled answer / image tokens
    completion_mask: torch.Tensor  # [N, L] 1 on tokens the loss counts
    advantages: torch.Tensor | None = None  # [N]
    sampling_logps: torch.Tensor | None = None  # [N, L] from the sampler
    old_logps: torch.Tensor | None = None  # [N, L] when the policy moves between rollout and use
    ref_logps: torch.Tensor | None = None  # [N, L] when beta > 0
    step_tokens: torch.Tensor | None = None  # scalar: counted tokens of the generation batch over all ranks

    def flatten(self, task: str) -> dict[str, torch.Tensor | None]:
        """`{"<task>/<field>": tensor}` (prompt fields as `"<task>/prompt/<key>"`), the shape TRL buffers and splits."""
        flat = {f"{task}/{PROMPT}/{key}": value for key, value in self.prompt.items()}
        flat.update({f"{task}/{f.name}": getattr(self, f.name) for f in fields(self) if f.name != PROMPT})
        return flat

    @classmethod
    def from_flat(cls, task: str, flat: dict) -> TaskBatch:
        """Inverse of `flatten` (extra keys of other tasks are ignored)."""
        head = f"{task}/{PROMPT}/"
        prompt = {key[len(head) :]: value for key, value in flat.items() if key.startswith(head)}
        values = {f.name: flat.get(f"{task}/{f.name}") for f in fields(cls) if f.name != PROMPT}
        return cls(prompt=prompt, **values)

    def rows(self, index: slice) -> TaskBatch:
        """The same batch restricted to rows `index` (scalars kept)."""

        def take(value):
            return value[index] if isinstance(value, torch.Tensor) and value.ndim else value

        values = {f.name: take(getattr(self, f.name)) for f in fields(self) if f.name != PROMPT}
        return TaskBatch(prompt={k: take(v) for k, v in self.prompt.items()}, **values)


@dataclass
class RolloutContext:
    """What a task's rollout needs besides the model: processor, config, this rank's pair rows, earlier outputs."""

    processor: janus.JanusProcessor
    config: object  # PairGRPOConfig (not imported: configs imports nothing from the trainer)
    rows: PairRows
    device: torch.device
    reuse_image_features: bool = False  # vision tower + aligner frozen: score with the rollout's features
    decoded_pixels: torch.Tensor | None = None  # [N, 3, H, W] in [-1, 1], set by the generation rollout
    judge_model: torch.nn.Module | None = None  # frozen copy of the initial policy (unirl_judge="frozen")
    answers: list[str] | None = None  # decoded sampled answers, set by the understanding rollout


@dataclass
class TaskRollout:
    """A task's rollouts plus the arguments of its reward functions (`f(prompts, completions, **kwargs)`)."""

    batch: TaskBatch
    reward_prompts: list
    reward_completions: list
    reward_kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """One task of PairGRPO. `name` is also the `task` of its reward functions (rewards.REWARD_TASKS)."""

    name: str
    loss_weight_field: str  # the PairGRPOConfig field holding the task's loss weight
    rollout: Callable[[torch.nn.Module, RolloutContext], TaskRollout]
    logps: Callable[[torch.nn.Module, TaskBatch, object], torch.Tensor]  # (model, batch, config) -> [N, L]
    sampler_logps_comparable: Callable[[object], bool]  # sampler log-probs = recomputed old ones under this config
    # Extra reward kwargs computed once every task has rolled out (still inside the unwrapped-model context).
    after_rollouts: Callable[[torch.nn.Module, RolloutContext], dict] | None = None


def with_generated_images(
    pixel_values: torch.Tensor,
    generated: torch.Tensor | None,
    own_image: torch.Tensor,
    preprocess: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Understanding pixels [N, 3, S, S] where rows flagged `own_image` [N] take the image generated in their row.

    `generated` [N, 3, H, W] in [-1, 1] (decoded rollouts) goes through `preprocess` (the processor's tensor path),
    so a self-generated image reaches the vision tower exactly like a file would (the UniRL setting).
    """
    if not bool(own_image.any()):
        return pixel_values
    if generated is None:
        raise ValueError("rows ask about their generated image but no image was generated before the answers.")
    out = pixel_values.clone()
    out[own_image] = preprocess(generated[own_image.to(generated.device)]).to(out)
    return out


def _generate_rollout(model, ctx: RolloutContext) -> TaskRollout:
    """K images per pair (one per row) with CFG, decoded once (rewards, logging and later tasks read the pixels)."""
    cfg = ctx.config
    batch = ctx.processor.encode_generation(ctx.rows.captions).to(ctx.device)
    images = janus.sample_image_tokens(
        model, batch, cfg_weight=cfg.cfg_weight, temperature=cfg.image_temperature, top_k=cfg.image_top_k,
        return_logps=True, decode=cfg.rollout_decode or default_decode(ctx.device),
    )  # fmt: skip
    ctx.decoded_pixels = janus.decode_image_tokens(model, images.tokens)  # [N, 3, H, W] in [-1, 1]
    # Image completions are always the full grid with no EOS: never "truncated", every token counts.
    prompt = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    prompt["uncond_input_ids"] = batch.uncond_input_ids
    out = TaskBatch(prompt, images.tokens, torch.ones_like(images.tokens), sampling_logps=images.logps)
    return TaskRollout(out, ctx.rows.captions, [""] * len(ctx.rows.captions), {"images": ctx.decoded_pixels})


def _understand_rollout(model, ctx: RolloutContext) -> TaskRollout:
    """K answers per pair (one per row) to the pair's question about its image (or the row's generated image)."""
    cfg, rows, special = ctx.config, ctx.rows, ctx.processor.special
    system = {} if cfg.understanding_system_prompt is None else {"system_prompt": cfg.understanding_system_prompt}
    batch = ctx.processor.encode_understanding(rows.questions, rows.und_images, **system).to(ctx.device)
    pixels = with_generated_images(
        batch.pixel_values, ctx.decoded_pixels, rows.own_image, ctx.processor.preprocess_images
    )
    features = image_features(model, pixels) if ctx.reuse_image_features else None  # [N, P, D]
    answers = janus.sample_answer_tokens(
        model,
        janus.UnderstandingBatch(batch.input_ids, batch.attention_mask, pixels),
        max_new_tokens=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=cfg.top_k or None,  # TRL uses 0 / None for "no top-k"
        eos_token_id=special.eos_id,
        pad_token_id=special.pad_id,
        return_logps=True,
        features=features,
        decode=cfg.rollout_decode or default_decode(ctx.device),
    )
    prompt = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "pixel_values": pixels}
    if features is not None:
        prompt["features"] = features
    out = TaskBatch(prompt, answers.completion_ids, answers.completion_mask, sampling_logps=answers.logps)
    texts = ctx.processor.decode_answers(answers.completion_ids)
    ctx.answers = texts  # the "sampled" image judge of a self row is this answer about its own image
    return TaskRollout(out, rows.raw_questions, texts, {"answer": rows.answers})


def judge_answers(model, ctx: RolloutContext) -> list[str]:
    """The answer that judges each row's generated image under `unirl_judge` (UniRL §GRPO; `JUDGE_MODES`).

    "sampled": the understanding rollout's answer of the row (about that image on self rows); "greedy": a greedy
    answer of the current policy; "frozen": of the frozen initial policy. The greedy decodes run on every row of
    every step, whatever the rows hold (a row without an image question asks an empty one and is ignored by the
    rewards), so every ZeRO-3 rank calls the same modules the same number of times.
    """
    cfg = ctx.config
    if cfg.unirl_judge == "sampled":
        return select_judge_answers("sampled", ctx.answers)
    judge = ctx.judge_model if cfg.unirl_judge == "frozen" else model
    answers = greedy_answers(
        judge,
        ctx.processor,
        ctx.decoded_pixels,
        ctx.rows.image_questions,
        max_new_tokens=cfg.judge_max_new_tokens or cfg.max_completion_length,
        template=cfg.understanding_prompt_template,
        system_prompt=cfg.understanding_system_prompt,
        decode=cfg.rollout_decode or default_decode(ctx.device),  # the answer rollout's loop
    )
    return select_judge_answers(cfg.unirl_judge, ctx.answers, **{cfg.unirl_judge: answers})


def _image_judge_kwargs(model, ctx: RolloutContext) -> dict:
    """Generation reward kwargs about each generated image: its question and gold (`question`/`answer`, None where
    there is none), `own_image` (UniRL self rows) and, when a judged reward is configured, `judge_answers`."""
    rows = ctx.rows
    kwargs = {"question": rows.image_questions, "answer": rows.image_answers, "own_image": rows.own_image.tolist()}
    if ctx.config.judges_images:
        kwargs["judge_answers"] = judge_answers(model, ctx)
    return kwargs


def _understand_logps(model, batch: TaskBatch, cfg) -> torch.Tensor:
    p = batch.prompt
    return janus.answer_token_logps(
        model,
        janus.UnderstandingBatch(p["input_ids"], p["attention_mask"], p["pixel_values"]),
        batch.completion_ids,
        batch.completion_mask,
        temperature=cfg.temperature,
        features=p.get("features"),
    )


def _generate_logps(model, batch: TaskBatch, cfg) -> torch.Tensor:
    p = batch.prompt
    return janus.image_token_logps(
        model,
        janus.GenerationBatch(p["input_ids"], p["attention_mask"], p["uncond_input_ids"]),
        batch.completion_ids,
        cfg_weight=cfg.cfg_weight if cfg.image_logprob == "cfg" else None,
        temperature=cfg.image_temperature,
    )


GENERATE = TaskSpec(
    name="generate",
    loss_weight_field="generation_loss_weight",
    rollout=_generate_rollout,
    logps=_generate_logps,
    # The sampler's log-probs are of the CFG-mixed distribution: comparable only when the loss scores that one.
    sampler_logps_comparable=lambda cfg: cfg.image_logprob == "cfg",
    after_rollouts=_image_judge_kwargs,
)
UNDERSTAND = TaskSpec(
    name="understand",
    loss_weight_field="understanding_loss_weight",
    rollout=_understand_rollout,
    logps=_understand_logps,
    sampler_logps_comparable=lambda cfg: True,
)
# Rollout order: images first, so understanding rows can be about the images generated in their own row.
TASK_SPECS: tuple[TaskSpec, ...] = (GENERATE, UNDERSTAND)
TASKS: tuple[str, ...] = tuple(spec.name for spec in TASK_SPECS)

__all__ = [
    "TASKS",
    "TASK_SPECS",
    "RolloutContext",
    "TaskBatch",
    "TaskRollout",
    "TaskSpec",
    "judge_answers",
    "with_generated_images",
]
