"""PairGRPOTrainer: TRL's GRPOTrainer with PairUni's paired understanding + generation rollouts, on any backbone.

The model is reached only through a `backbones.Backbone` (Janus-Pro, Lumina-DiMOO, Show-o, ...). What it changes in
TRL (only its documented seams, see tests/open_r1/test_trl_seams.py):
- `_generate_and_score_completions`: one optimizer step's rollout, in order: 1. K images per pair, 2. K answers
  per pair (UniRL self rows answer about their own image), 3. the judge's answers about each image (UniRL rewards
  only), 4. rewards per task, 5. PairGRPO advantages (`open_r1.advantages.pair_advantages`, PairUni §3.2); each
  task's `TaskBatch` is flattened for TRL's buffer.
- `_compute_loss`: per task, `open_r1.trainer.loss.clipped_surrogate` on the backbone's recomputed log-probs,
  normalised over the optimizer step (`normalise_loss`), times the task's loss weight, summed.
- `_save`: a folder the backbone loads (16-bit weights gathered under ZeRO-3 by the HF Trainer); with LoRA
  (`peft_config`) the adapters are merged into those weights and also saved alone (open_r1/trainer/lora.py).
What it keeps: TRL's sampler (each pair row repeated `num_generations` times), generation-batch buffering, clipping
epsilons, old-log-prob rule, optimizer/scheduler/resume, metric averaging and logging.
"""

import copy
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig
from safetensors.torch import save_file
from transformers.integrations import TensorBoardCallback
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation
from trl.models.utils import prepare_deepspeed

from backbones import Backbone, GeneratedImages, Rollout
from backbones.interface import freeze_modules as freeze_prefixes
from backbones.interface import to_pil, trainable_prefixes
from open_r1.advantages import pair_advantages, rank_rows
from open_r1.configs import PairGRPOConfig
from open_r1.run_dir import RunDirCallback
from open_r1.trainer.lora import (
    ADAPTER_FILE,
    adapter_state_dict,
    adapters_disabled,
    apply_lora,
    has_lora,
    load_adapter,
    lora_scaling,
    merge_lora_state_dict,
)
from open_r1.trainer.loss import clipped_surrogate, masked_totals, mean_from_totals, normalise_loss
from open_r1.trainer.model_card import write_model_card_for_save
from open_r1.trainer.reporting import MetricsFileCallback, log_sample_grid, use_progress_lines
from open_r1.trainer.rollout import PairRows, frac_zero_std, pair_rows, score_task
from open_r1.trainer.task_batch import GENERATE, TASKS, UNDERSTAND, TaskBatch, pad_rollout
from rewards import nan_mean_std, reward_stats
from rewards.reward_unirl import select_judge_answers

logger = logging.getLogger(__name__)


@dataclass
class StepRollout:
    """Everything one generation batch produced before rewards: both tasks' rollouts and the judge's answers."""

    images: GeneratedImages
    answers: Rollout
    answer_texts: list[str]
    judge_answers: list[str] | None = None  # UniRL: the answer that judges each generated image


def freeze_modules(model: torch.nn.Module, trainable_modules: list[str], backbone: Backbone) -> tuple[int, int]:
    """Set requires_grad from the backbone's module groups; returns (trainable, frozen) parameter counts.

    Must run before the optimizer is built: the HF Trainer only optimises parameters that require grad.
    """
    trainable, frozen = freeze_prefixes(model, trainable_prefixes(backbone, trainable_modules))
    if trainable == 0:
        raise ValueError(
            f"trainable_modules={trainable_modules} matched no parameter of {type(model).__name__}; "
            f"use groups from {list(backbone.module_groups)}."
        )
    logger.info("Trainable parameters: %d (%s); frozen: %d.", trainable, ", ".join(trainable_modules), frozen)
    return trainable, frozen


class PairGRPOTrainer(GRPOTrainer):
    """GRPO on (understanding, generation) pairs of a unified model; see the module docstring.

    Args:
        model: the model (`backbones.load_backbone(path)` returns it with its backbone), not yet wrapped.
        backbone: its `backbones.Backbone` (templates, samplers, log-probs, decoding, save).
        reward_funcs: `rewards.build_reward_funcs(...)` output; each has `.name`, `.task`, `.weight`.
        args: `PairGRPOConfig`.
        train_dataset: `open_r1.dataset.load_pair_dataset(...)` output.
        peft_config: a `peft.LoraConfig` (`open_r1.trainer.lora.build_lora_config`) to train LoRA adapters only,
            injected in place (not passed to TRL, which would wrap the model in a `PeftModel` the backbone's functions
            do not expect); `trainable_modules` is then ignored. The KL reference is the same model with adapters off.
    """

    _tag_names = ["trl", "grpo", "pairuni"]

    def __init__(
        self,
        model,
        backbone: Backbone,
        reward_funcs,
        args: PairGRPOConfig,
        train_dataset,
        callbacks=None,
        peft_config: LoraConfig | None = None,
    ):
        self.backbone = backbone
        self.image_sampling, self.answer_sampling = args.image_sampling(), args.answer_sampling()
        self.peft_config = peft_config
        self.task_reward_funcs = {task: [f for f in reward_funcs if f.task == task] for task in TASKS}
        for task, funcs in self.task_reward_funcs.items():
            if not funcs:
                raise ValueError(f"reward_funcs={[f.name for f in reward_funcs]} has no {task!r} reward; add one.")
        pairs_per_generation = args.generation_batch_size // args.num_generations
        if len(train_dataset) < pairs_per_generation:
            # TRL's sampler drops incomplete generation batches: the run would end at step 0 without an error.
            raise ValueError(
                f"train_dataset has {len(train_dataset)} pairs but one generation batch needs {pairs_per_generation} "
                f"(generation_batch_size={args.generation_batch_size} rows / num_generations={args.num_generations}); "
                "use more pairs or lower per_device_train_batch_size / steps_per_generation."
            )
        # UniRL's frozen image judge: the initial policy, full and unwrapped on every rank like a reward model (no
        # ZeRO-3 partitioning, no collectives), copied before LoRA adapters or freezing touch the model.
        judge = copy.deepcopy(model).requires_grad_(False).eval() if args.uses_frozen_judge else None
        if peft_config is not None:
            apply_lora(model, peft_config)
            if args.gradient_checkpointing:
                # Frozen embeddings: reentrant checkpointing (forced by some setups) needs inputs that require grad.
                model.enable_input_require_grads()
        else:
            freeze_modules(model, args.trainable_modules, backbone)
        # The reference is a frozen copy with its own weights and embeddings (never the policy's), built before
        # the policy is wrapped; with LoRA the policy with adapters disabled is the reference (no copy). TRL would
        # rebuild it from a hub id, which local checkpoints are not: hide beta from TRL's constructor, restore it.
        ref_model = copy.deepcopy(model).requires_grad_(False).eval() if args.beta > 0 and not peft_config else None
        beta, args.beta = args.beta, 0.0
        try:
            super().__init__(
                model=model,
                reward_funcs=list(reward_funcs),
                args=args,
                train_dataset=train_dataset,
                processing_class=backbone.tokenizer,
                callbacks=callbacks,
            )
        finally:
            args.beta = beta
        if self.accelerator.num_processes > 1 and not self.is_deepspeed_enabled:
            # The loss calls submodules directly (e.g. Janus's text and image heads); DDP/FSDP only synchronise gradients
            # of forwards that go through their wrapper, so ranks would silently diverge. DeepSpeed reduces
            # gradients in its backward hooks and has no such requirement.
            raise ValueError(
                f"PairGRPO on {self.accelerator.num_processes} processes needs DeepSpeed: pass --deepspeed "
                "configs/zero2.json or configs/zero3.json (plain DDP/FSDP would not synchronise gradients)."
            )
        self.beta = beta
        self.ref_model = self._prepare_reference(ref_model)
        self.judge = judge.to(self.accelerator.device) if judge is not None else None
        self.add_callback(MetricsFileCallback(args.output_dir))
        self.add_callback(RunDirCallback())
        use_progress_lines(self)
        self._last_image_log_step = -1
        self._active_warnings: set[str] = set()
        if self.accelerator.is_main_process:
            logger.info(args.step_summary(self.accelerator.num_processes))

    def _prepare_reference(self, ref_model):
        if ref_model is None:
            return None
        if self.is_deepspeed_enabled:
            return prepare_deepspeed(ref_model, self.accelerator)
        return self.accelerator.prepare_model(ref_model, evaluation_mode=True)

    # ---------------------------------------------------------------- rollouts -----------------------------------

    @contextmanager
    def _timed(self, name: str):
        start = time.perf_counter()
        yield
        self._metrics["train"][f"timing/{name}"].append(time.perf_counter() - start)

    def _warn_on_change(self, key: str, active: bool, message: str, *args) -> None:
        """Warn once when condition `key` becomes true (main process only); it may warn again after it cleared."""
        if not active:
            self._active_warnings.discard(key)
            return
        if key not in self._active_warnings and self.accelerator.is_main_process:
            logger.warning(message, *args)
        self._active_warnings.add(key)

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict[str, torch.Tensor]:
        """One generation batch: rollouts, rewards and advantages, flattened per task (`TaskBatch.flatten`)."""
        rows = pair_rows(
            inputs, self.backbone.tokenizer, self.args.understanding_prompt_template, self.args.max_prompt_length
        )
        with self._generation_model() as model:
            with self._timed("generate_rollout"):
                images = self.backbone.sample_images(model, rows.captions, self.image_sampling)  # 1.
            with self._timed("understand_rollout"):
                answers = self.backbone.sample_answers(  # 2.
                    model, rows.questions, rows.und_images, self.answer_sampling, images, rows.own_image
                )
            step = StepRollout(images, answers, self.backbone.decode_answers(answers.completion_ids))
            if self.args.judges_images:
                with self._timed("generate_judge"):
                    step.judge_answers = self._judge_answers(model, rows, step)  # 3.
        batches = {GENERATE: TaskBatch(images.rollout), UNDERSTAND: TaskBatch(answers)}
        self._pad_to_common_lengths(batches)
        with self._timed("rewards"):
            rewards = self._rewards(rows, step)  # 4.
        advantages, weights, global_rewards, global_weights = self._rank_advantages(rewards, rows)  # 5.
        output = {"pair_weight": weights.to(self.accelerator.device)}
        for task, batch in batches.items():
            batch.advantages = advantages[task].to(self.accelerator.device)
            # TRL's `num_items_in_batch`: the task's counted tokens of this generation batch on all ranks.
            batch.step_tokens = self.accelerator.gather(batch.completion_mask.sum()).sum().float()
            self._add_old_and_ref_logps(task, batch)
            output.update(batch.flatten(task))
        self._log_rollout_metrics(global_rewards, global_weights, batches)
        self._maybe_log_images(images.pixels, rows.captions, rewards[GENERATE])
        return output

    @contextmanager
    def _generation_model(self):
        """The policy, whole on every rank (TRL's unwrap gathers ZeRO-3 weights), without grad, under autocast."""
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped,
            torch.no_grad(),
            self.accelerator.autocast(),
        ):
            yield unwrapped

    def _judge_answers(self, model, rows: PairRows, step: StepRollout) -> list[str]:
        """The answer that judges each row's generated image under `unirl_judge` (UniRL §GRPO; `JUDGE_MODES`).

        "sampled": the understanding rollout's answer of the row (about that image on self rows); "greedy": a greedy
        answer of the current policy; "frozen": of the frozen initial policy. The greedy decodes run on every row of
        every step, whatever the rows hold (a row without an image question asks an empty one and is ignored by the
        rewards), so every ZeRO-3 rank calls the same modules the same number of times.
        """
        mode = self.args.unirl_judge
        if mode == "sampled":
            return select_judge_answers(mode, step.answer_texts)
        questions = [self.args.understanding_prompt_template.format(question=q) for q in rows.image_questions]
        options = self.args.answer_sampling(greedy=True, max_new_tokens=self.args.judge_max_new_tokens)
        judge = self.judge if mode == "frozen" else model
        own = torch.ones(len(questions), dtype=torch.bool)
        judged = self.backbone.sample_answers(judge, questions, [None] * len(questions), options, step.images, own)
        texts = self.backbone.decode_answers(judged.completion_ids)
        return select_judge_answers(mode, step.answer_texts, **{mode: texts})

    def _pad_to_common_lengths(self, batches: dict[str, TaskBatch]) -> None:
        """Pad each task's completions to the longest on any rank (one collective for both tasks; see pad_rollout)."""
        device = self.accelerator.device
        lengths = torch.tensor([b.rollout.completion_ids.shape[1] for b in batches.values()], device=device)
        lengths = self.accelerator.gather(lengths.unsqueeze(0)).amax(dim=0).tolist()
        for batch, length in zip(batches.values(), lengths, strict=True):
            pad_rollout(batch.rollout, int(length), self.backbone.pad_id)

    def _rewards(self, rows: PairRows, step: StepRollout) -> dict[str, torch.Tensor]:
        """Each task's weighted reward [N] (`f(prompts, completions, **kwargs)` per TRL's reward signature)."""
        image_kwargs = {"images": step.images.pixels, "question": rows.image_questions, "answer": rows.image_answers}
        image_kwargs["own_image"] = rows.own_image.tolist()
        if step.judge_answers is not None:
            image_kwargs["judge_answers"] = step.judge_answers
        captions = rows.captions
        return {
            GENERATE: self._score(GENERATE, captions, [""] * len(captions), image_kwargs),
            UNDERSTAND: self._score(UNDERSTAND, rows.raw_questions, step.answer_texts, {"answer": rows.answers}),
        }

    def _score(self, task: str, prompts: list, completions: list, kwargs: dict) -> torch.Tensor:
        """Weighted task reward [N] (NaN where no reward applies); each function's raw mean/std is logged."""
        funcs = self.task_reward_funcs[task]
        total, raw = score_task(funcs, prompts, completions, **kwargs)
        raw_all = self.accelerator.gather(raw.to(self.accelerator.device)).cpu()  # [N_global, F]
        stats = reward_stats({func.name: raw_all[:, i] for i, func in enumerate(funcs)})
        for key, value in stats.items():
            self._metrics["train"][key].append(value)
        return total

    def _rank_advantages(self, rewards: dict[str, torch.Tensor], rows: PairRows):
        """Gather every rank's rewards (one collective), compute the advantages, keep this rank's rows.

        Returns ({task: advantages [N]}, pair_weight [N], {task: global rewards [N_global]}, pair_weight [N_global]).
        """
        names = list(rewards)
        columns = torch.stack([*rewards.values(), rows.similarity, rows.is_aligned.float()], dim=1)  # [N, T + 2]
        gathered = self.accelerator.gather(columns.to(self.accelerator.device)).cpu()  # [N_global, T + 2]
        global_rewards = {name: gathered[:, i] for i, name in enumerate(names)}
        advantages, weights = self.compute_pair_advantages(global_rewards, gathered[:, -2], gathered[:, -1].bool())
        rank, n = self.accelerator.process_index, columns.shape[0]
        local = {name: rank_rows(advantages[name], rank, n) for name in names}
        return local, rank_rows(weights, rank, n), global_rewards, weights

    def compute_pair_advantages(
        self, rewards: dict[str, torch.Tensor], similarity: torch.Tensor, is_aligned: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The pair-aware advantage (PairUni §3.2): each task's rewards normalised per pair, scaled by w_p.

        All inputs are [N] over the global generation batch, the K = num_generations rows of a pair consecutive.
        Override this one method for other pairings/weightings; `pair_weighting` covers sqrt / linear / none.
        Returns ({task: advantages [N]}, pair weight per row [N]); see `open_r1.advantages.pair_advantages`.
        """
        return pair_advantages(
            rewards,
            similarity,
            is_aligned,
            self.num_generations,
            scale=self.args.scale_rewards != "none",
            weighting=self.args.pair_weighting,
        )

    def _log_rollout_metrics(self, global_rewards: dict, global_weights, batches: dict[str, TaskBatch]) -> None:
        metrics = self._metrics["train"]
        for task, rewards in global_rewards.items():  # [N_global]
            mean, std = nan_mean_std(rewards)
            zero_std = frac_zero_std(rewards, self.num_generations)
            metrics[f"{task}/reward_mean"].append(mean)
            metrics[f"{task}/reward_std"].append(std)
            metrics[f"{task}/frac_reward_zero_std"].append(zero_std)
            self._warn_on_change(
                f"constant/{task}",
                zero_std == 1.0,
                "All %s reward groups are constant (frac_reward_zero_std=1): advantages are 0 and this task does not "
                "learn from them. Check the reward (%s) and the sampling temperature. (Logged again only after it "
                "changes.)",
                task,
                [f.name for f in self.task_reward_funcs[task]],
            )
            lengths = self.accelerator.gather(batches[task].completion_mask.sum(dim=1).float())
            metrics[f"{task}/completion_length_mean"].append(lengths.mean().item())
            metrics[f"{task}/completion_length_max"].append(lengths.max().item())
        metrics["pair_weight/mean"].append(global_weights.mean().item())

    def _maybe_log_images(self, pixels: torch.Tensor, captions: list[str], scores: torch.Tensor) -> None:
        step = self.state.global_step
        every = self.args.log_images_steps
        if every <= 0 or step % every != 0 or step == self._last_image_log_step:
            return
        self._last_image_log_step = step
        if not self.accelerator.is_main_process:
            return
        count = min(self.args.num_images_to_log, pixels.shape[0])
        trackers = [
            cb.tb_writer
            for cb in self.callback_handler.callbacks
            if isinstance(cb, TensorBoardCallback) and cb.tb_writer is not None
        ]
        if "wandb" in (self.args.report_to or []):
            import wandb

            trackers += [wandb] if wandb.run is not None else []
        path = log_sample_grid(
            to_pil(pixels[:count].float().cpu()),
            captions[:count],
            scores[:count].tolist(),
            self.args.output_dir,
            step,
            trackers,
        )
        logger.info("Sample images of step %d: %s", step, path)

    # ---------------------------------------------------------------- log-probs ----------------------------------

    def _logps(self, model, task: str, rollout: Rollout) -> torch.Tensor:
        """[N, L] log-probs of a task's actions under `model`, as the backbone defines them for that task."""
        if task == GENERATE:
            return self.backbone.image_logps(model, rollout, self.image_sampling)
        return self.backbone.answer_logps(model, rollout, self.answer_sampling)

    @torch.no_grad()
    def _batched_logps(self, model, task: str, batch: TaskBatch) -> torch.Tensor:
        """`_logps` in chunks of one micro-batch of rows (the same chunking on every rank)."""
        core = self.accelerator.unwrap_model(model)
        n, size = batch.completion_mask.shape[0], self.args.per_device_train_batch_size
        with self.accelerator.autocast():
            return torch.cat(
                [self._logps(core, task, batch.rollout.rows(slice(i, i + size))) for i in range(0, n, size)]
            )

    def _add_old_and_ref_logps(self, task: str, batch: TaskBatch) -> None:
        """Old log-probs only when the policy moves between generation and use (TRL's rule), ref ones when beta>0."""
        generate_every = self.args.steps_per_generation * self.num_iterations
        with self._timed("old_ref_logps"):
            if self.args.gradient_accumulation_steps % generate_every != 0:
                batch.old_logps = self._batched_logps(self.model, task, batch)
            if self.beta != 0.0:
                batch.ref_logps = self._ref_logps(task, batch)

    def _ref_logps(self, task: str, batch: TaskBatch) -> torch.Tensor:
        if self.ref_model is not None:
            return self._batched_logps(self.ref_model, task, batch)
        with adapters_disabled(self.accelerator.unwrap_model(self.model)):  # LoRA: the base model is the reference
            return self._batched_logps(self.model, task, batch)

    # ---------------------------------------------------------------- loss ---------------------------------------

    def _compute_loss(self, model, inputs: dict) -> torch.Tensor:
        """Sum over tasks of loss weight * normalised clipped surrogate (+ beta * KL); `open_r1.trainer.loss`."""
        core = self.accelerator.unwrap_model(model)
        weights = {GENERATE: self.args.generation_loss_weight, UNDERSTAND: self.args.understanding_loss_weight}
        loss = 0.0
        for task in TASKS:
            batch = TaskBatch.from_flat(task, inputs)
            with self._timed(f"{task}_logps_forward"), self.accelerator.autocast():
                per_token_logps = self._logps(core, task, batch.rollout)
            loss = loss + weights[task] * self._task_loss(task, batch, per_token_logps)
        return loss

    def _task_loss(self, task: str, batch: TaskBatch, per_token_logps: torch.Tensor) -> torch.Tensor:
        """One task's clipped surrogate, normalised over the optimizer step (`loss_type`), and its metrics."""
        # Without stored old log-probs the rollout is used once, right after sampling: old = new (TRL's rule).
        old = per_token_logps.detach() if batch.old_logps is None else batch.old_logps
        terms = clipped_surrogate(
            per_token_logps,
            old,
            batch.advantages,
            epsilon_low=self.epsilon_low,
            epsilon_high=self.epsilon_high,
            ref_logps=batch.ref_logps,
            beta=self.beta,
        )
        accumulation = self.current_gradient_accumulation_steps
        # step_tokens spans the generation batch: rescale it to one optimizer step (equal when they coincide).
        step_tokens = batch.step_tokens * accumulation / self.args.steps_per_generation
        loss = normalise_loss(
            terms.per_token_loss,
            batch.completion_mask,
            self.loss_type,
            step_tokens=step_tokens,
            num_processes=self.accelerator.num_processes,
            accumulation_steps=accumulation,
        )
        self._log_loss_metrics(task, batch, terms, old, loss)
        return loss

    def _log_loss_metrics(self, task: str, batch: TaskBatch, terms, old: torch.Tensor, loss) -> None:
        """Clip ratio, mean ratio, KL and sampler-vs-recomputed log-prob gap: one all-reduce for all of them."""
        mask = batch.completion_mask
        named = {"clip_ratio": terms.is_clipped.float(), "ratio_mean": terms.ratio}
        if terms.per_token_kl is not None:
            named["kl"] = terms.per_token_kl
        if batch.rollout.sampling_logps is not None:  # None when the sampler's distribution is not the scored one
            # ~0 on the first use of a rollout when old/new/sampling log-probs see exactly the same inputs.
            named["sampling_logp_abs_diff"] = (old - batch.rollout.sampling_logps).abs()
        totals = torch.stack([masked_totals(v, mask) for v in named.values()])  # [M, 2]
        totals = self.accelerator.reduce(totals, reduction="sum")
        for name, row in zip(named, totals, strict=True):
            self._metrics["train"][f"{task}/{name}"].append(mean_from_totals(row))
        self._metrics["train"][f"{task}/loss"].append(self.accelerator.gather(loss.detach()).mean().item())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """TRL's metric averaging, plus a `kl` key (mean over tasks) when beta > 0."""
        metrics = self._metrics["train"]
        kls = [v for task in TASKS for v in metrics.get(f"{task}/kl", []) if not math.isnan(v)]
        if kls:
            metrics["kl"].append(sum(kls) / len(kls))
        super().log(logs, start_time)

    # ---------------------------------------------------------------- checkpoints --------------------------------

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Write a folder the backbone loads (for Janus-Pro: transformers-format weights, config, tokenizer, processor).

        Under ZeRO-3 the HF Trainer passes the gathered 16-bit `state_dict` (`stage3_gather_16bit_weights_on_model_save`).
        """
        if not self.args.should_save:
            return
        out = Path(output_dir if output_dir is not None else self.args.output_dir)
        model = self.accelerator.unwrap_model(self.model)
        if state_dict is not None and not state_dict:
            raise ValueError(
                "DeepSpeed returned no weights to save; set zero_optimization.stage3_gather_16bit_weights_on_model_save "
                "to true in the DeepSpeed config (configs/zero3.json does)."
            )
        if has_lora(model):
            state_dict = model.state_dict() if state_dict is None else state_dict
            out.mkdir(parents=True, exist_ok=True)
            save_file(adapter_state_dict(state_dict), str(out / ADAPTER_FILE), metadata={"format": "pt"})
            self.peft_config.save_pretrained(out)  # adapter_config.json
            state_dict = merge_lora_state_dict(state_dict, lora_scaling(self.peft_config))
        self.backbone.save(model, out, state_dict=state_dict)
        torch.save(self.args, out / "training_args.bin")

    def create_model_card(
        self, model_name: str | None = None, dataset_name: str | None = None, tags: str | list[str] | None = None
    ) -> None:
        """README.md naming the base model, method, data, recipe, hyperparameters, rewards and usage (instead of TRL's
        generic card); `dataset_name` is the training data file when the launch command does not show it."""
        if self.is_world_process_zero():
            write_model_card_for_save(self, model_name or Path(self.args.output_dir).name, dataset_name)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """With LoRA, resume the adapters from `adapter_model.safetensors`: the checkpoint's model file is merged."""
        if self.peft_config is None:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_adapter(self.accelerator.unwrap_model(model if model is not None else self.model), resume_from_checkpoint)


__all__ = ["PairGRPOTrainer", "freeze_modules"]
