"""UniRL SFT (arXiv 2505.23380, §SFT): the model answers questions about images it just generated; no external images.

`UniRLSFTTrainer` is transformers' `Trainer` with one new `compute_loss` and a Janus `_save`. Per step, for each
self row (prompt, question, gold answer):
1. sample an image for the prompt (janus.sample_image_tokens, CFG, no grad) and VQ-decode it;
2. loss = NLL of the gold answer given (that image, the question), token mean over the batch;
3. optionally (`image_nll`) + NLL of the image tokens of rows whose greedy answer on their image was right
   (rejection sampling: the non-end-to-end way for the answer signal to train generation);
4. `end_to_end`: the image fed to step 2 is decoded through straight-through Gumbel-Softmax (janus.gumbel), so the
   answer NLL also reaches the generation head through the VQ decoder and the vision tower.
Every rank runs the same modules every step (ZeRO-3): the judge and the image NLL run on all rows, masked.
What it does not do: GRPO (open_r1/grpo.py), LoRA, evaluation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
from transformers import Trainer, TrainingArguments
from trl.models import unwrap_model_for_generation

import janus
from data_tools.unirl_rows import read_self_rows
from janus.gumbel import straight_through_pixels
from open_r1.configs import MODULE_GROUPS
from open_r1.run_dir import RunDirCallback
from open_r1.trainer.model_card import write_model_card_for_save
from open_r1.trainer.pair_grpo_trainer import freeze_modules
from open_r1.trainer.reporting import MetricsFileCallback, use_progress_lines
from rewards.reward_unirl import answer_is_correct, greedy_answers

logger = logging.getLogger(__name__)

SELF_ROW_COLUMNS = ("prompt", "question", "answer", "tag")


@dataclass
class UniRLSFTConfig(TrainingArguments):
    r"""
    Configuration for [`UniRLSFTTrainer`]: transformers' `TrainingArguments` plus the UniRL SFT fields below.

    `per_device_train_batch_size` counts self rows (one generated image each). Defaults follow UniRL's Janus
    setting where the paper gives one (learning rate 1e-5); everything else is this project's documented choice.

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
    understanding_prompt_template (`str`, *optional*, defaults to `"{question}"`):
        Format string turning a row's question into the user turn.
    understanding_system_prompt (`str`, *optional*):
        System prompt of the understanding turn (default: the processor's Janus-Pro default).
    trainable_modules (`list[str]`):
        Module groups to train (see `open_r1.configs.MODULE_GROUPS`); the rest are frozen.
    """

    learning_rate: float = field(default=1e-5, metadata={"help": "UniRL's Janus learning rate."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Rows are kept whole (text columns)."})
    cfg_weight: float = field(default=5.0, metadata={"help": "CFG weight for image sampling."})
    image_temperature: float = field(default=1.0, metadata={"help": "Sampling temperature for image tokens."})
    end_to_end: bool = field(default=False, metadata={"help": "Straight-through Gumbel-Softmax end-to-end SFT."})
    gumbel_temperature: float = field(default=1.0, metadata={"help": "Gumbel-Softmax temperature (backward)."})
    image_nll: bool = field(default=False, metadata={"help": "Add the image-token NLL of correctly answered rows."})
    image_nll_weight: float = field(default=1.0, metadata={"help": "Weight of the image-token NLL."})
    judge_max_new_tokens: int = field(default=16, metadata={"help": "Greedy judge answer length (image_nll)."})
    understanding_prompt_template: str = field(default="{question}", metadata={"help": "User turn; has {question}."})
    understanding_system_prompt: str | None = field(default=None, metadata={"help": "Understanding system prompt."})
    trainable_modules: list[str] = field(
        default_factory=lambda: ["language_model", "aligner", "generation_embeddings", "generation_head"],
        metadata={"help": f"Module groups to train, of {list(MODULE_GROUPS)}."},
    )

    def __post_init__(self):
        # The machine-dependent setup (fp32 and a gloo state on a CPU-only host) is open_r1.runtime.prepare_launch's,
        # run by open_r1/sft.py before this config is parsed, exactly as for PairGRPO.
        if self.gradient_checkpointing:
            # Non-reentrant: frozen embeddings feed the checkpointed blocks (see PairGRPOConfig).
            self.gradient_checkpointing_kwargs = {"use_reentrant": False, **(self.gradient_checkpointing_kwargs or {})}
        super().__post_init__()
        unknown = [m for m in self.trainable_modules if m not in MODULE_GROUPS]
        if unknown:
            raise ValueError(f"trainable_modules: unknown group(s) {unknown}; choose from {list(MODULE_GROUPS)}")
        if "{question}" not in self.understanding_prompt_template:
            raise ValueError("understanding_prompt_template must contain '{question}'.")
        if self.gumbel_temperature <= 0:
            raise ValueError(f"gumbel_temperature={self.gumbel_temperature} must be > 0.")
        if self.remove_unused_columns:
            raise ValueError("remove_unused_columns must be False: the trainer reads the rows' text columns.")


def load_self_rows(path: str, max_rows: int | None = None) -> datasets.Dataset:
    """Self rows (data_tools/unirl_rows.py) as a `datasets.Dataset` with columns `SELF_ROW_COLUMNS`."""
    rows = read_self_rows(path)[:max_rows]
    if not rows:
        raise ValueError(f"{path}: no rows; build some with data_tools/make_unirl_prompts.py")
    return datasets.Dataset.from_dict({c: [getattr(r, c) for r in rows] for c in SELF_ROW_COLUMNS})


def gold_completion(processor: janus.JanusProcessor, answers: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Gold answers as assistant completions: ids/mask [N, L], right-padded, each ending with EOS.

    The template renders a finished assistant turn as `"<|Assistant|>: {answer}<eos>"`, so the completion after the
    prompt's `"<|Assistant|>:"` is `" {answer}"` + EOS.
    """
    rows = [processor.tokenizer.encode(" " + a.strip(), add_special_tokens=False) + [processor.special.eos_id]
            for a in answers]  # fmt: skip
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), processor.special.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


class UniRLSFTTrainer(Trainer):
    """transformers' Trainer for UniRL SFT on self rows (see the module docstring)."""

    def __init__(self, model, processor: janus.JanusProcessor, args: UniRLSFTConfig, train_dataset, **kwargs):
        trainable, frozen = freeze_modules(model, args.trainable_modules)
        logger.info("Trainable parameters %d, frozen %d (%s)", trainable, frozen, args.trainable_modules)
        super().__init__(model=model, args=args, train_dataset=train_dataset, data_collator=list, **kwargs)
        self.processor = processor
        self._step_metrics: dict[str, list[float]] = defaultdict(list)
        # The same run folder and console as PairGRPO: metrics.jsonl, checkpoint markers, one progress line per log.
        self.add_callback(MetricsFileCallback(args.output_dir))
        self.add_callback(RunDirCallback())
        use_progress_lines(self)

    def _system_prompt_kwargs(self) -> dict:
        prompt = self.args.understanding_system_prompt
        return {} if prompt is None else {"system_prompt": prompt}

    def _sample_images(self, gen_batch: janus.GenerationBatch, questions: list[str]):
        """Image tokens [N, I], decoded pixels [N, 3, H, W] and (with `image_nll`) greedy answers, all without grad."""
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped,
            torch.no_grad(),
        ):
            tokens = janus.sample_image_tokens(
                unwrapped, gen_batch, cfg_weight=self.args.cfg_weight, temperature=self.args.image_temperature
            ).tokens
            pixels = janus.decode_image_tokens(unwrapped, tokens)
            judged = None
            if self.args.image_nll:
                judged = greedy_answers(
                    unwrapped,
                    self.processor,
                    pixels,
                    questions,
                    max_new_tokens=self.args.judge_max_new_tokens,
                    template=self.args.understanding_prompt_template,
                    system_prompt=self.args.understanding_system_prompt,
                )
        return tokens, pixels, judged

    def _answer_nll(self, core, pixels: torch.Tensor, questions: list[str], answers: list[str]) -> torch.Tensor:
        """Token-mean NLL of the gold answers given (image, question); `pixels` may carry grad (end-to-end)."""
        texts = [self.args.understanding_prompt_template.format(question=q) for q in questions]
        batch = self.processor.encode_understanding(texts, pixels, **self._system_prompt_kwargs())
        batch = batch.to(core.device)
        ids, mask = gold_completion(self.processor, answers)
        ids, mask = ids.to(core.device), mask.to(core.device)
        logps = janus.answer_token_logps(core, batch, ids, mask)  # [N, L]
        return -(logps * mask).sum() / mask.sum()

    def _image_nll(self, core, gen_batch, tokens: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        """Mean image-token NLL over rows marked `correct` [N]; computed for every row so all ranks run the head."""
        logps = janus.image_token_logps(core, gen_batch, tokens, cfg_weight=None)  # [N, I], conditional-only
        per_row = -logps.mean(dim=1)  # [N]
        return (per_row * correct).sum() / correct.sum().clamp(min=1)

    def compute_loss(self, model, inputs: list[dict], return_outputs: bool = False, num_items_in_batch=None):
        prompts = [row["prompt"] for row in inputs]
        questions = [row["question"] for row in inputs]
        answers = [row["answer"] for row in inputs]
        device = self.accelerator.device
        gen_batch = self.processor.encode_generation(prompts).to(device)
        tokens, pixels, judged = self._sample_images(gen_batch, questions)
        core = self.accelerator.unwrap_model(model)
        if self.args.end_to_end:
            pixels = straight_through_pixels(
                core,
                gen_batch,
                tokens,
                cfg_weight=self.args.cfg_weight,
                temperature=self.args.image_temperature,
                tau=self.args.gumbel_temperature,
            )
        loss = self._answer_nll(core, pixels, questions, answers)
        self._step_metrics["answer_nll"].append(loss.item())
        if self.args.image_nll:
            correct = [answer_is_correct(a, g, q) for a, g, q in zip(judged, answers, questions, strict=True)]
            correct = torch.tensor(correct, dtype=torch.float32, device=device)
            image_nll = self._image_nll(core, gen_batch, tokens, correct)
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
        """A folder `janus.load_pretrained` loads; under ZeRO-3 `state_dict` holds the gathered 16-bit weights."""
        if not self.args.should_save:
            return
        if state_dict is not None and not state_dict:
            raise ValueError(
                "DeepSpeed returned no weights to save; set zero_optimization.stage3_gather_16bit_weights_on_model_save "
                "to true in the DeepSpeed config (configs/zero3.json does)."
            )
        out = Path(output_dir if output_dir is not None else self.args.output_dir)
        janus.save_pretrained(self.accelerator.unwrap_model(self.model), self.processor, out, state_dict=state_dict)
        torch.save(self.args, out / "training_args.bin")

    def create_model_card(
        self, model_name: str | None = None, dataset_name: str | None = None, tags: str | list[str] | None = None
    ) -> None:
        """The project's README.md card (method UniRL, data, recipe, hyperparameters), as PairGRPOTrainer writes."""
        if self.is_world_process_zero():
            write_model_card_for_save(self, model_name or Path(self.args.output_dir).name, dataset_name)


__all__ = ["SELF_ROW_COLUMNS", "UniRLSFTConfig", "UniRLSFTTrainer", "gold_completion", "load_self_rows"]
