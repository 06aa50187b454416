"""PairGRPOTrainer: TRL's GRPOTrainer with PairUni's paired understanding + generation rollouts on Janus-Pro.

What it changes in TRL (only its documented seams, see tests/open_r1/test_trl_seams.py):
- `_generate_and_score_completions`: every task of `open_r1.trainer.tasks.TASK_SPECS` rolls out (images first, then
  answers) inside TRL's unwrap context, is scored by its reward functions, and gets PairGRPO advantages
  (`open_r1.advantages.pair_advantages`, PairUni §3.2); each task's `TaskBatch` is flattened for TRL's buffer.
  UniRL (`method: unirl`, self rows) runs through the same path: self rows answer about their own generated image
  and the generation rewards read a judge's answers (`TaskSpec.after_rollouts`).
- `_compute_loss`: per task, `open_r1.trainer.loss.clipped_surrogate` on the task's log-probs, normalised over the
  optimizer step (`normalise_loss`), times the task's loss weight, summed. Metrics reduce in one collective per task.
- `_save`: a folder `janus.load_pretrained` loads (16-bit weights gathered under ZeRO-3 by the HF Trainer); with
  LoRA (`peft_config`) the adapters are merged into those weights and also saved alone (open_r1/trainer/lora.py).
What it keeps: TRL's sampler (each pair row repeated `num_generations` times), generation-batch buffering, clipping
epsilons, old-log-prob rule, optimizer/scheduler/resume, metric averaging and logging. No task name is branched on.
"""

import copy
import logging
import math
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import LoraConfig
from safetensors.torch import save_file
from transformers.integrations import TensorBoardCallback
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation
from trl.models.utils import prepare_deepspeed

import janus
from open_r1.advantages import pair_advantages, rank_rows
from open_r1.configs import MODULE_GROUPS, PairGRPOConfig
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
from open_r1.trainer.rollout import PairRows, frac_zero_std, pad_right, pair_rows, score_task
from open_r1.trainer.tasks import TASK_SPECS, TASKS, RolloutContext, TaskBatch, TaskRollout, TaskSpec
from rewards import nan_mean_std, reward_stats

TASK_BY_NAME = {spec.name: spec for spec in TASK_SPECS}

logger = logging.getLogger(__name__)


def freeze_modules(model: torch.nn.Module, trainable_modules: list[str]) -> tuple[int, int]:
    """Set requires_grad from the module groups in `open_r1.configs.MODULE_GROUPS`; returns (trainable, frozen) counts.

    Must run before the optimizer is built: the HF Trainer only optimises parameters that require grad.
    """
    prefixes = [p for group in trainable_modules for p in MODULE_GROUPS[group]]
    trainable = frozen = 0
    for name, param in model.named_parameters():
        keep = any(name == p or name.startswith(p + ".") for p in prefixes)
        param.requires_grad_(keep)
        trainable += param.numel() if keep else 0
        frozen += 0 if keep else param.numel()
    if trainable == 0:
        raise ValueError(
            f"trainable_modules={trainable_modules} matched no parameter of {type(model).__name__}; "
            f"use groups from {list(MODULE_GROUPS)}."
        )
    logger.info("Trainable parameters: %d (%s); frozen: %d.", trainable, ", ".join(trainable_modules), frozen)
    return trainable, frozen


def pad_completions(batch: TaskBatch, length: int, pad_id: int) -> None:
    """Right-pad a task batch's completions (ids, mask, sampler log-probs) to `length` tokens, in place."""
    extra = length - batch.completion_ids.shape[1]
    batch.completion_ids, batch.completion_mask = pad_right(
        batch.completion_ids, batch.completion_mask, length, pad_id
    )
    if batch.sampling_logps is not None and extra > 0:
        batch.sampling_logps = torch.nn.functional.pad(batch.sampling_logps, (0, extra))


def frozen(model: torch.nn.Module, groups: tuple[str, ...]) -> bool:
    """Whether no parameter of the `MODULE_GROUPS` `groups` trains (LoRA adapters included)."""
    prefixes = tuple(p + "." for group in groups for p in MODULE_GROUPS[group])
    return not any(p.requires_grad for name, p in model.named_parameters() if name.startswith(prefixes))


class PairGRPOTrainer(GRPOTrainer):
    """GRPO on (understanding, generation) pairs of a Janus-Pro model; see the module docstring.

    Args:
        model: a `JanusForConditionalGeneration` (from `janus.load_pretrained`), not yet wrapped.
        processor: its `janus.JanusProcessor` (templates, image preprocessing, special tokens).
        reward_funcs: `rewards.build_reward_funcs(...)` output; each has `.name`, `.task`, `.weight`.
        args: `PairGRPOConfig`.
        train_dataset: `open_r1.dataset.load_pair_dataset(...)` output.
        peft_config: a `peft.LoraConfig` (`open_r1.trainer.lora.build_lora_config`) to train LoRA adapters only,
            injected in place (not passed to TRL, which would wrap the model in a `PeftModel` the janus functions do
            not expect); `trainable_modules` is then ignored. The KL reference is the same model with adapters off.
    """

    _tag_names = ["trl", "grpo", "pairuni"]

    def __init__(
        self,
        model,
        processor,
        reward_funcs,
        args: PairGRPOConfig,
        train_dataset,
        callbacks=None,
        peft_config: LoraConfig | None = None,
    ):
        self.processor = processor
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
            freeze_modules(model, args.trainable_modules)
        # The reference is a frozen copy with its own weights and embeddings (never the policy's), built before
        # the policy is wrapped; with LoRA the policy with adapters disabled is the reference (no copy). TRL would
        # rebuild it from a hub id, which Janus checkpoints are not: hide beta from TRL's constructor, restore it.
        ref_model = copy.deepcopy(model).requires_grad_(False).eval() if args.beta > 0 and not peft_config else None
        beta, args.beta = args.beta, 0.0
        try:
            super().__init__(
                model=model,
                reward_funcs=list(reward_funcs),
                args=args,
                train_dataset=train_dataset,
                processing_class=processor.tokenizer,
                callbacks=callbacks,
            )
        finally:
            args.beta = beta
        if self.accelerator.num_processes > 1 and not self.is_deepspeed_enabled:
            # The loss calls Janus submodules directly (text head, image head); DDP/FSDP only synchronise gradients
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
        # Frozen vision tower + aligner: the rollout's image features serve every log-prob pass of the step
        # (recomputed from pixels when either trains).
        self.reuse_image_features = frozen(model, ("vision_model", "aligner"))
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
        """Rollouts, rewards and advantages of the local generation batch, flattened per task (`TaskBatch.flatten`)."""
        rows = pair_rows(
            inputs, self.processor.tokenizer, self.args.understanding_prompt_template, self.args.max_prompt_length
        )
        ctx = RolloutContext(
            self.processor, self.args, rows, self.accelerator.device, self.reuse_image_features, judge_model=self.judge
        )
        rollouts = self._rollout(ctx)
        with self._timed("rewards"):
            rewards = {name: self._score(name, rollout) for name, rollout in rollouts.items()}
        advantages, weights, global_rewards, global_weights = self._rank_advantages(rewards, rows)
        output = {"pair_weight": weights.to(self.accelerator.device)}
        for name, rollout in rollouts.items():
            batch = rollout.batch
            batch.advantages = advantages[name].to(self.accelerator.device)
            # TRL's `num_items_in_batch`: the task's counted tokens of this generation batch on all ranks.
            batch.step_tokens = self.accelerator.gather(batch.completion_mask.sum()).sum().float()
            self._add_old_and_ref_logps(TASK_BY_NAME[name], batch)
            output.update(batch.flatten(name))
        self._log_rollout_metrics(global_rewards, global_weights, rollouts)
        self._maybe_log_images(ctx.decoded_pixels, rows.captions, rewards["generate"])
        return output

    def _rollout(self, ctx: RolloutContext) -> dict[str, TaskRollout]:
        """Every task's rollouts in `TASK_SPECS` order (images first), completions padded to one length per task."""
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
            rollouts = {}
            for spec in TASK_SPECS:
                with self._timed(f"{spec.name}_rollout"):
                    rollouts[spec.name] = spec.rollout(unwrapped, ctx)
            for spec in (s for s in TASK_SPECS if s.after_rollouts is not None):  # UniRL's image judge
                with self._timed(f"{spec.name}_judge"):
                    rollouts[spec.name].reward_kwargs.update(spec.after_rollouts(unwrapped, ctx))
        # Every rank must score completions of the same length: the log-prob head runs in chunks of positions and
        # ZeRO-3 all-gathers parameters per module call, so different lengths would desynchronise the ranks.
        lengths = torch.tensor([r.batch.completion_ids.shape[1] for r in rollouts.values()], device=ctx.device)
        lengths = self.accelerator.gather(lengths.unsqueeze(0)).amax(dim=0).tolist()  # one collective
        for rollout, length in zip(rollouts.values(), lengths, strict=True):
            pad_completions(rollout.batch, int(length), self.processor.special.pad_id)
        return rollouts

    def _score(self, task: str, rollout: TaskRollout) -> torch.Tensor:
        """Weighted task reward [N] (NaN where no reward applies); each function's raw mean/std is logged."""
        funcs = self.task_reward_funcs[task]
        total, raw = score_task(funcs, rollout.reward_prompts, rollout.reward_completions, **rollout.reward_kwargs)
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

    def _log_rollout_metrics(self, global_rewards: dict, global_weights, rollouts: dict[str, TaskRollout]) -> None:
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
            lengths = self.accelerator.gather(rollouts[task].batch.completion_mask.sum(dim=1).float())
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
            janus.to_pil(pixels[:count].float().cpu()),
            captions[:count],
            scores[:count].tolist(),
            self.args.output_dir,
            step,
            trackers,
        )
        logger.info("Sample images of step %d: %s", step, path)

    # ---------------------------------------------------------------- log-probs ----------------------------------

    @torch.no_grad()
    def _batched_logps(self, model, spec: TaskSpec, batch: TaskBatch) -> torch.Tensor:
        """`spec.logps` in chunks of one micro-batch of rows (the same chunking on every rank)."""
        core = self.accelerator.unwrap_model(model)
        n, size = batch.completion_ids.shape[0], self.args.per_device_train_batch_size
        with self.accelerator.autocast():
            return torch.cat([spec.logps(core, batch.rows(slice(i, i + size)), self.args) for i in range(0, n, size)])

    def _add_old_and_ref_logps(self, spec: TaskSpec, batch: TaskBatch) -> None:
        """Old log-probs only when the policy moves between generation and use (TRL's rule), ref ones when beta>0."""
        generate_every = self.args.steps_per_generation * self.num_iterations
        with self._timed("old_ref_logps"):
            if self.args.gradient_accumulation_steps % generate_every != 0:
                batch.old_logps = self._batched_logps(self.model, spec, batch)
            if self.beta != 0.0:
                batch.ref_logps = self._ref_logps(spec, batch)

    def _ref_logps(self, spec: TaskSpec, batch: TaskBatch) -> torch.Tensor:
        if self.ref_model is not None:
            return self._batched_logps(self.ref_model, spec, batch)
        with adapters_disabled(self.accelerator.unwrap_model(self.model)):  # LoRA: the base model is the reference
            return self._batched_logps(self.model, spec, batch)

    # ---------------------------------------------------------------- loss ---------------------------------------

    def _compute_loss(self, model, inputs: dict) -> torch.Tensor:
        """Sum over tasks of loss_weight * normalised clipped surrogate (+ beta * KL); `open_r1.trainer.loss`."""
        core = self.accelerator.unwrap_model(model)
        loss = 0.0
        for spec in TASK_SPECS:
            batch = TaskBatch.from_flat(spec.name, inputs)
            with self._timed(f"{spec.name}_logps_forward"), self.accelerator.autocast():
                per_token_logps = spec.logps(core, batch, self.args)
            loss = loss + getattr(self.args, spec.loss_weight_field) * self._task_loss(spec, batch, per_token_logps)
        return loss

    def _task_loss(self, spec: TaskSpec, batch: TaskBatch, per_token_logps: torch.Tensor) -> torch.Tensor:
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
        self._log_loss_metrics(spec, batch, terms, old, loss)
        return loss

    def _log_loss_metrics(self, spec: TaskSpec, batch: TaskBatch, terms, old: torch.Tensor, loss) -> None:
        """Clip ratio, mean ratio, KL and sampler-vs-recomputed log-prob gap: one all-reduce for all of them."""
        mask = batch.completion_mask
        named = {"clip_ratio": terms.is_clipped.float(), "ratio_mean": terms.ratio}
        if terms.per_token_kl is not None:
            named["kl"] = terms.per_token_kl
        if batch.sampling_logps is not None and spec.sampler_logps_comparable(self.args):
            # ~0 on the first use of a rollout when old/new/sampling log-probs see exactly the same inputs.
            named["sampling_logp_abs_diff"] = (old - batch.sampling_logps).abs()
        totals = torch.stack([masked_totals(v, mask) for v in named.values()])  # [M, 2]
        totals = self.accelerator.reduce(totals, reduction="sum")
        for name, row in zip(named, totals, strict=True):
            self._metrics["train"][f"{spec.name}/{name}"].append(mean_from_totals(row))
        self._metrics["train"][f"{spec.name}/loss"].append(self.accelerator.gather(loss.detach()).mean().item())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """TRL's metric averaging, plus a `kl` key (mean over tasks) when beta > 0."""
        metrics = self._metrics["train"]
        kls = [v for task in TASKS for v in metrics.get(f"{task}/kl", []) if not math.isnan(v)]
        if kls:
            metrics["kl"].append(sum(kls) / len(kls))
        super().log(logs, start_time)

    # ---------------------------------------------------------------- checkpoints --------------------------------

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Write a folder `janus.load_pretrained` loads: transformers-format weights, config, tokenizer, processor.

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
        janus.save_pretrained(model, self.processor, out, state_dict=state_dict)
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
