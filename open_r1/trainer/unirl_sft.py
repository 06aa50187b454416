"""UniRL SFT (arXiv 2505.23380, §SFT): the model answers questions about images it just generated; no external images.

`UniRLSFTTrainer` is transformers' `Trainer` with one new `compute_loss` and a backbone `_save`; the model is reached
only through its `backbones.Backbone`. Per step, for each self row (prompt, question, gold answer):
1. sample an image for the prompt (the backbone's image sampler, CFG, no grad) and decode it;
2. loss = NLL of the gold answer given (that image, the question), token mean over the batch;
3. optionally (`image_nll`) + NLL of the image tokens of rows whose greedy answer on their image was right
   (rejection sampling: the non-end-to-end way for the answer signal to train generation);
4. `end_to_end`: the image fed to step 2 is decoded through straight-through Gumbel-Softmax (Janus-Pro:
   janus.gumbel), so the answer NLL also reaches the generation head through the VQ decoder and the vision tower.
Every rank runs the same modules every step (ZeRO-3): the judge and the image NLL run on all rows, masked.
What it does not do: GRPO (open_r1/grpo.py), LoRA, evaluation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
from transformers import Trainer, TrainingArguments
from trl.models import unwrap_model_for_generation

from backbones import AnswerSampling, Backbone, GeneratedImages, ImageSampling
from data_tools.jsonl import iter_jsonl
from data_tools.schema import SchemaError
from data_tools.unirl_rows import PAIR_SIDES, SelfRow, parse_self_row
from open_r1.configs import check_field_types
from open_r1.dataset import SELF_PAIR_TYPE, report_invalid_lines
from open_r1.run_dir import RunDirCallback
from open_r1.trainer.model_card import write_model_card_for_save
from open_r1.trainer.pair_grpo_trainer import freeze_modules
from open_r1.trainer.reporting import MetricsFileCallback, use_progress_lines
from open_r1.trainer.rollout import truncate_left
from rewards.reward_unirl import answer_is_correct

logger = logging.getLogger(__name__)

SELF_ROW_COLUMNS = ("prompt", "question", "answer", "tag")
PAIR_IN_SFT = "a PairUG pair; UniRL SFT trains on self rows (prompt, question, answer)"
PAIR_IN_SFT_FIX = (
    "build self rows with data_tools/make_unirl_prompts.py, train pairs with open_r1/grpo.py, or pass "
    "--pair_types self to keep only the file's self rows"
)


@dataclass
class UniRLSFTConfig(TrainingArguments):
    r"""
    Configuration for [`UniRLSFTTrainer`]: transformers' `TrainingArguments` plus the UniRL SFT fields below.

    `per_device_train_batch_size` counts self rows (one generated image each). Defaults follow UniRL's Janus
    setting where the paper gives one (learning rate 1e-5); everything else is this project's documented choice.

    backbone (`str`, *optional*):
        The unified model family (`backbones.BACKBONES`); `None`: inferred from the checkpoint's config.json.

    > Parameters that control the images

    cfg_weight (`float`, *optional*, defaults to `5.0`):
        Classifier-free guidance weight for image sampling.
    image_temperature (`float`, *optional*, defaults to `1.0`):
        Sampling temperature for image tokens.

    > Parameters that control the loss

    end_to_end (`bool`, *optional*, defaults to `False`):
        Straight-through Gumbel-Softmax decoding so the answer NLL trains the image policy (memory-heavy).
    gumbel_temperature (`float`, *optional*, defaults to `1.0`):
        Gumbel-Softmax temperature of the backward pass (the paper gives none).
    image_nll (`bool`, *optional*, defaults to `False`):
        Add the NLL of the image tokens of rows whose greedy answer was right (rejection-sampled images).
    image_nll_weight (`float`, *optional*, defaults to `1.0`):
        Weight of that term.
    judge_max_new_tokens (`int`, *optional*, defaults to `16`):
        Answer length of the greedy judge used by `image_nll`.
    max_prompt_length (`int`, *optional*, defaults to `512`):
        Maximum text tokens of a prompt or a templated question (PairGRPO's field); longer texts keep their last
        tokens (TRL's left truncation). `None` disables truncation.
    understanding_prompt_template (`str`, *optional*, defaults to `"{question}"`):
        Format string turning a row's question into the user turn.
    understanding_system_prompt (`str`, *optional*):
        System prompt of the understanding turn (default: the processor's Janus-Pro default).
    trainable_modules (`list[str]`):
        Module groups to train (the backbone's `module_groups`; the default is Janus-Pro's); the rest are frozen.
    """

    backbone: str | None = field(
        default=None, metadata={"help": "Unified model family (backbones.BACKBONES; default: from the checkpoint)."}
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "UniRL's Janus learning rate."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Rows are kept whole (text columns)."})
    cfg_weight: float = field(default=5.0, metadata={"help": "CFG weight for image sampling."})
    image_temperature: float = field(default=1.0, metadata={"help": "Sampling temperature for image tokens."})
    end_to_end: bool = field(default=False, metadata={"help": "Straight-through Gumbel-Softmax end-to-end SFT."})
    gumbel_temperature: float = field(default=1.0, metadata={"help": "Gumbel-Softmax temperature (backward)."})
    image_nll: bool = field(default=False, metadata={"help": "Add the image-token NLL of correctly answered rows."})
    image_nll_weight: float = field(default=1.0, metadata={"help": "Weight of the image-token NLL."})
    judge_max_new_tokens: int = field(default=16, metadata={"help": "Greedy judge answer length (image_nll)."})
    max_prompt_length: int | None = field(
        default=512, metadata={"help": "Max text tokens of a prompt / question (left truncation); None: off."}
    )
    understanding_prompt_template: str = field(default="{question}", metadata={"help": "User turn; has {question}."})
    understanding_system_prompt: str | None = field(default=None, metadata={"help": "Understanding system prompt."})
    trainable_modules: list[str] = field(
        default_factory=lambda: ["language_model", "aligner", "generation_embeddings", "generation_head"],
        metadata={"help": "Module groups to train (the backbone's module_groups)."},
    )

    def __post_init__(self):
        check_field_types(self)
        # The machine-dependent setup (fp32 and a gloo state on a CPU-only host) is open_r1.runtime.prepare_launch's,
        # run by open_r1/sft.py before this config is parsed, exactly as for PairGRPO.
        if self.gradient_checkpointing:
            # Non-reentrant: frozen embeddings feed the checkpointed blocks (see PairGRPOConfig).
            self.gradient_checkpointing_kwargs = {"use_reentrant": False, **(self.gradient_checkpointing_kwargs or {})}
        super().__post_init__()
        if "{question}" not in self.understanding_prompt_template:
            raise ValueError("understanding_prompt_template must contain '{question}'.")
        if self.gumbel_temperature <= 0:
            raise ValueError(f"gumbel_temperature={self.gumbel_temperature} must be > 0.")
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns must be False: the trainer reads the rows' text columns.")

    def image_sampling(self) -> ImageSampling:
        return ImageSampling(cfg_weight=self.cfg_weight, temperature=self.image_temperature)

    def answer_sampling(self, greedy: bool = False, max_new_tokens: int = 16) -> AnswerSampling:
        """Answers at temperature 1 (the NLL's distribution); `greedy` for the judge of `image_nll`."""
        return AnswerSampling(
            max_new_tokens=max_new_tokens, do_sample=not greedy, system_prompt=self.understanding_system_prompt
        )


def load_self_rows(
    path: str, max_rows: int | None = None, skip_invalid: bool = False, pair_types: Sequence[str] | None = None
) -> datasets.Dataset:
    """Self rows (data_tools/unirl_rows.py) as a `datasets.Dataset` with columns `SELF_ROW_COLUMNS`.

    Every line is checked first; invalid ones (PairUG pairs included: SFT has no use for a pair) raise one
    `ValueError` listing each as `file:line: field: problem; fix`, or, with `skip_invalid`, are dropped and counted.
    `pair_types` (grpo.py's pairing filter) may only name "self": `--pair_types self` drops PairUG lines silently.
    """
    pairs_dropped = _check_sft_pair_types(pair_types)
    rows, errors = _scan_self_rows(Path(path), pairs_dropped)
    report_invalid_lines(path, errors, skip_invalid)
    rows = rows[:max_rows]
    if not rows:
        raise ValueError(f"{path}: no valid self rows; fix: build some with data_tools/make_unirl_prompts.py")
    return datasets.Dataset.from_dict({c: [getattr(r, c) for r in rows] for c in SELF_ROW_COLUMNS})


def _check_sft_pair_types(pair_types: Sequence[str] | None) -> bool:
    """Whether `pair_types` selects the self rows of a mixed file; anything but ["self"] is refused."""
    if not pair_types:
        return False
    if list(pair_types) != [SELF_PAIR_TYPE]:
        raise ValueError(
            f"pair_types: {list(pair_types)}: UniRL SFT trains on self rows only (pair type {SELF_PAIR_TYPE!r}); "
            f"fix: pass --pair_types {SELF_PAIR_TYPE} (or drop it), or train PairUG pairs with open_r1/grpo.py"
        )
    return True


def _scan_self_rows(path: Path, drop_pairs: bool) -> tuple[list[SelfRow], list[str]]:
    """The valid self rows of `path` and every other line's error; PairUG pairs are errors unless `drop_pairs`."""
    if not path.is_file():
        raise ValueError(f"self-row file {str(path)!r} not found; fix: build it with data_tools/make_unirl_prompts.py")
    errors: list[SchemaError] = []
    rows: list[SelfRow] = []
    for where, obj in iter_jsonl(path, errors.append):
        try:
            if isinstance(obj, dict) and PAIR_SIDES & obj.keys():
                if not drop_pairs:
                    raise SchemaError(where, "generate_ann", PAIR_IN_SFT, PAIR_IN_SFT_FIX)
                continue
            rows.append(parse_self_row(obj, where))
        except SchemaError as err:
            errors.append(err)
    return rows, [str(e) for e in sorted(errors, key=lambda e: e.line_no)]


class UniRLSFTTrainer(Trainer):
    """transformers' Trainer for UniRL SFT on self rows (see the module docstring)."""

    def __init__(self, model, backbone: Backbone, args: UniRLSFTConfig, train_dataset, **kwargs):
        freeze_modules(model, args.trainable_modules, backbone)
        super().__init__(model=model, args=args, train_dataset=train_dataset, data_collator=list, **kwargs)
        self.backbone = backbone
        self._step_metrics: dict[str, list[float]] = defaultdict(list)
        # The same run folder and console as PairGRPO: metrics.jsonl, checkpoint markers, one progress line per log.
        self.add_callback(MetricsFileCallback(args.output_dir))
        self.add_callback(RunDirCallback())
        use_progress_lines(self)
        if args.end_to_end and not hasattr(backbone, "straight_through_pixels"):
            raise ValueError(
                f"end_to_end needs a backbone whose image decoder is differentiable in the sampled tokens "
                f"(straight_through_pixels); {backbone.name!r} has none. Set end_to_end: false."
            )

    def _questions(self, questions: list[str]) -> list[str]:
        template, limit = self.args.understanding_prompt_template, self.args.max_prompt_length
        return [truncate_left(self.backbone.tokenizer, template.format(question=q), limit) for q in questions]

    def _sample_images(self, prompts: list[str], questions: list[str]) -> tuple[GeneratedImages, list[str] | None]:
        """Images (codes and decoded pixels) and (with `image_nll`) greedy answers about them, all without grad."""
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped,
            torch.no_grad(),
        ):
            images = self.backbone.sample_images(unwrapped, prompts, self.args.image_sampling())
            judged = None
            if self.args.image_nll:
                greedy = self.args.answer_sampling(greedy=True, max_new_tokens=self.args.judge_max_new_tokens)
                own = torch.ones(len(questions), dtype=torch.bool)
                questions = self._questions(questions)
                answers = self.backbone.sample_answers(
                    unwrapped, questions, [None] * len(questions), greedy, images, own
                )
                judged = self.backbone.decode_answers(answers.completion_ids)
        return images, judged

    def _answer_nll(self, core, images: GeneratedImages, questions: list[str], answers: list[str]) -> torch.Tensor:
        """Token-mean NLL of the gold answers given (image, question); `images.pixels` may carry grad (end-to-end)."""
        options = self.args.answer_sampling()
        own = torch.ones(len(questions), dtype=torch.bool)
        gold = self.backbone.answer_rollout(
            self._questions(questions), [None] * len(questions), answers, options, images, own
        )
        logps = self.backbone.answer_logps(core, gold, options)  # [N, L]
        mask = gold.completion_mask
        return -(logps * mask).sum() / mask.sum()

    def _image_nll(self, core, images: GeneratedImages, correct: torch.Tensor) -> torch.Tensor:
        """Mean image-token NLL over rows marked `correct` [N]; computed for every row so all ranks run the head.

        The conditional distribution at temperature 1 is trained, on images that were sampled WITH CFG: the
        rejection-sampled images come from the guided sampler, the NLL teaches the unguided head to produce them.
        """
        options = ImageSampling(cfg_weight=self.args.cfg_weight, logprob="conditional")
        logps = self.backbone.image_logps(core, images.rollout, options)  # [N, I]
        per_row = -logps.mean(dim=1)  # [N]
        return (per_row * correct).sum() / correct.sum().clamp(min=1)

    def compute_loss(self, model, inputs: list[dict], return_outputs: bool = False, num_items_in_batch=None):
        prompts = [
            truncate_left(self.backbone.tokenizer, row["prompt"], self.args.max_prompt_length) for row in inputs
        ]
        questions = [row["question"] for row in inputs]
        answers = [row["answer"] for row in inputs]
        images, judged = self._sample_images(prompts, questions)
        core = self.accelerator.unwrap_model(model)
        seen = images
        if self.args.end_to_end:
            pixels = self.backbone.straight_through_pixels(
                core, prompts, images.rollout.completion_ids, self.args.image_sampling(), self.args.gumbel_temperature
            )
            seen = GeneratedImages(images.rollout, pixels)
        loss = self._answer_nll(core, seen, questions, answers)
        self._step_metrics["answer_nll"].append(loss.item())
        if self.args.image_nll:
            correct = [answer_is_correct(a, g, q) for a, g, q in zip(judged, answers, questions, strict=True)]
            correct = torch.tensor(correct, dtype=torch.float32, device=self.accelerator.device)
            image_nll = self._image_nll(core, images, correct)
            loss = loss + self.args.image_nll_weight * image_nll
            self._step_metrics["image_nll"].append(image_nll.item())
            self._step_metrics["judge_accuracy"].append(correct.mean().item())
        return (loss, {}) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the means of the UniRL metrics since the last log (per process)."""
        logs = {**logs, **{k: sum(v) / len(v) for k, v in self._step_metrics.items() if v}}
        self._step_metrics.clear()
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """A folder the backbone loads; under ZeRO-3 `state_dict` holds the gathered 16-bit weights."""
        if not self.args.should_save:
            return
        if state_dict is not None and not state_dict:
            raise ValueError(
                "DeepSpeed returned no weights to save; set zero_optimization.stage3_gather_16bit_weights_on_model_save "
                "to true in the DeepSpeed config (configs/zero3.json does)."
            )
        out = Path(output_dir if output_dir is not None else self.args.output_dir)
        self.backbone.save(self.accelerator.unwrap_model(self.model), out, state_dict=state_dict)
        torch.save(self.args, out / "training_args.bin")

    def create_model_card(
        self, model_name: str | None = None, dataset_name: str | None = None, tags: str | list[str] | None = None
    ) -> None:
        """The project's README.md card (method UniRL, data, recipe, hyperparameters), as PairGRPOTrainer writes."""
        if self.is_world_process_zero():
            write_model_card_for_save(self, model_name or Path(self.args.output_dir).name, dataset_name)


__all__ = ["SELF_ROW_COLUMNS", "UniRLSFTConfig", "UniRLSFTTrainer", "load_self_rows"]
