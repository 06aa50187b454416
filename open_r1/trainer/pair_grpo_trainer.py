"""PairGRPOTrainer: TRL's GRPOTrainer with PairUni's paired understanding + generation rollouts on Janus-Pro.

What it changes in TRL (only its documented seams, see tests/open_r1/test_trl_seams.py):
- `_generate_and_score_completions`: per repeated pair row, one answer (janus.sample_answer_tokens) and one image
  (janus.sample_image_tokens, CFG) inside TRL's unwrap context; images decoded once; rewards per task; advantages
  normalised per pair and task, then multiplied by the pair weight (`compute_pair_advantages`, open_r1.advantages).
- `_compute_loss`: clipped surrogate per task on janus.answer_token_logps / janus.image_token_logps, token mean within
  each task (576 image tokens must not swamp the answer tokens), optional KL, per-task loss weights, summed.
- `_save`: a folder `janus.load_pretrained` loads (16-bit weights gathered under ZeRO-3 by the HF Trainer); with
  LoRA (`peft_config`) the adapters are merged into those weights and also saved alone (open_r1/trainer/lora.py).
What it keeps: TRL's sampler (each pair row repeated `num_generations` times), generation-batch buffering, clipping
epsilons, old-log-prob logic, optimizer/scheduler/resume, metric averaging and logging.
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
from open_r1.advantages import group_advantages, pair_weights
from open_r1.configs import MODULE_GROUPS, PairGRPOConfig
from open_r1.logs import warn_once
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
from open_r1.trainer.model_card import write_model_card_for_save
from open_r1.trainer.reporting import MetricsFileCallback, log_sample_grid, use_progress_lines
from open_r1.trainer.rollout import TASKS, frac_zero_std, nan_mean_std, pad_right, pair_rows, score_task

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
        self.add_callback(MetricsFileCallback(args.output_dir))
        self.add_callback(RunDirCallback())
        use_progress_lines(self)
        self._last_image_log_step = -1

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
        self._metrics["train" if self.model.training else "eval"][f"timing/{name}"].append(time.perf_counter() - start)

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict[str, torch.Tensor]:
        """Rollouts, rewards and advantages for the local generation batch (one rollout row per dataset row)."""
        device = self.accelerator.device
        mode = "train" if self.model.training else "eval"
        rows = pair_rows(
            inputs, self.processor.tokenizer, self.args.understanding_prompt_template, self.args.max_prompt_length
        )
        und_batch = self.processor.encode_understanding(
            rows.questions, rows.und_images, **self._system_prompt_kwargs()
        ).to(device)
        gen_batch = self.processor.encode_generation(rows.captions).to(device)
        answers, image_samples, pixels = self._rollout(und_batch, gen_batch)
        texts = self.processor.decode_answers(answers.completion_ids)
        with self._timed("rewards"):
            und_rewards = self._score("understand", rows.raw_questions, texts, answer=rows.answers)
            gen_rewards = self._score("generate", rows.captions, [""] * len(texts), images=pixels)
        global_rewards, global_weights, (und_adv, gen_adv, weights) = self._global_advantages(
            und_rewards, gen_rewards, rows
        )
        self._log_rollout_metrics(mode, global_rewards, global_weights, answers.completion_mask)
        self._maybe_log_images(pixels, rows.captions, gen_rewards)
        output = {
            "und_input_ids": und_batch.input_ids,
            "und_attention_mask": und_batch.attention_mask,
            "und_pixel_values": und_batch.pixel_values,
            "und_completion_ids": answers.completion_ids,
            "und_completion_mask": answers.completion_mask,
            "und_advantages": und_adv.to(device),
            "und_sampling_per_token_logps": answers.logps,
            "gen_input_ids": gen_batch.input_ids,
            "gen_attention_mask": gen_batch.attention_mask,
            "gen_uncond_input_ids": gen_batch.uncond_input_ids,
            "gen_image_tokens": image_samples.tokens,
            "gen_advantages": gen_adv.to(device),
            "gen_sampling_per_token_logps": image_samples.logps,
            "pair_weight": weights.to(device),
        }
        output.update(self._old_and_ref_logps(output))
        return output

    def _system_prompt_kwargs(self) -> dict:
        prompt = self.args.understanding_system_prompt
        return {} if prompt is None else {"system_prompt": prompt}

    def _rollout(self, und_batch, gen_batch):
        """K answers and K images per pair (one of each per row) with gathered weights; images decoded once."""
        top_k = self.top_k or None  # TRL uses 0 / None for "no top-k"
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped,
            torch.no_grad(),
        ):
            with self._timed("answer_rollout"):
                answers = janus.sample_answer_tokens(
                    unwrapped,
                    und_batch,
                    max_new_tokens=self.max_completion_length,
                    temperature=self.temperature,
                    top_p=self.top_p,
                    top_k=top_k,
                    eos_token_id=self.processor.special.eos_id,
                    pad_token_id=self.processor.special.pad_id,
                    return_logps=True,
                )
            with self._timed("image_rollout"):
                images = janus.sample_image_tokens(
                    unwrapped,
                    gen_batch,
                    cfg_weight=self.args.cfg_weight,
                    temperature=self.args.image_temperature,
                    top_k=self.args.image_top_k,
                    return_logps=True,
                )
            with self._timed("decode"):
                pixels = janus.decode_image_tokens(unwrapped, images.tokens)  # [N, 3, H, W] in [-1, 1]
        # Every rank must score answers of the same length: the log-prob head runs in chunks of positions and
        # ZeRO-3 all-gathers parameters per module call, so different lengths would desynchronise the ranks.
        length = int(
            self.accelerator.gather(torch.tensor([answers.completion_ids.shape[1]], device=pixels.device)).max()
        )
        answers.completion_ids, answers.completion_mask = pad_right(
            answers.completion_ids, answers.completion_mask, length, self.processor.special.pad_id
        )
        if answers.logps is not None:
            answers.logps = torch.nn.functional.pad(answers.logps, (0, length - answers.logps.shape[1]))
        return answers, images, pixels

    def _score(self, task: str, prompts: list[str], completions: list, **kwargs) -> torch.Tensor:
        """Weighted task reward [N] (NaN where no reward applies); each function's raw mean/std is logged."""
        total, raw = score_task(self.task_reward_funcs[task], prompts, completions, **kwargs)
        mode = "train" if self.model.training else "eval"
        raw_all = self.accelerator.gather(raw.to(self.accelerator.device)).cpu()  # [N_global, F]
        for i, func in enumerate(self.task_reward_funcs[task]):
            mean, std = nan_mean_std(raw_all[:, i])
            self._metrics[mode][f"rewards/{func.name}/mean"].append(mean)
            self._metrics[mode][f"rewards/{func.name}/std"].append(std)
        return total

    def _global_advantages(self, und_rewards, gen_rewards, rows):
        """Gather rewards of all ranks (a pair's K rows may sit on several ranks), compute, keep the local slice.

        Returns ({task: global rewards [N_global]}, pair_weight [N_global],
        (und_advantages [N], gen_advantages [N], pair_weight [N])).
        """
        columns = torch.stack([und_rewards, gen_rewards, rows.similarity, rows.is_aligned.float()], dim=1)  # [N, 4]
        gathered = self.accelerator.gather(columns.to(self.accelerator.device)).cpu()  # [N_global, 4], one collective
        und_all, gen_all, similarity, is_aligned = gathered.unbind(dim=1)
        und_adv, gen_adv, weights = self.compute_pair_advantages(und_all, gen_all, similarity, is_aligned.bool())
        n = len(und_rewards)
        local = slice(self.accelerator.process_index * n, (self.accelerator.process_index + 1) * n)
        global_rewards = {"understand": und_all, "generate": gen_all}
        return global_rewards, weights, (und_adv[local], gen_adv[local], weights[local])

    def compute_pair_advantages(
        self, und_rewards: torch.Tensor, gen_rewards: torch.Tensor, similarity: torch.Tensor, is_aligned: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The pair-aware advantage (PairUni §3.2): A_u, A_g normalised per pair and task, both scaled by w_p.

        All inputs are [N] over the global generation batch, the K = num_generations rows of a pair consecutive.
        Override this one method for other pairings/weightings; `pair_weighting` covers sqrt / linear / none.
        Returns (und_advantages [N], gen_advantages [N], pair_weight per row [N]).
        """
        k = self.num_generations
        scale = self.args.scale_rewards != "none"
        und_adv = group_advantages(und_rewards, k, scale=scale)
        gen_adv = group_advantages(gen_rewards, k, scale=scale)
        # A pair's rows share its similarity/type: weight per pair [B], then one value per row [N].
        weights = pair_weights(similarity.view(-1, k)[:, 0], is_aligned.view(-1, k)[:, 0], self.args.pair_weighting)
        weights = weights.repeat_interleave(k)
        return und_adv * weights, gen_adv * weights, weights

    def _log_rollout_metrics(self, mode, global_rewards: dict, global_weights, completion_mask) -> None:
        metrics = self._metrics[mode]
        for task in TASKS:
            rewards = global_rewards[task]  # [N_global]
            mean, std = nan_mean_std(rewards)
            zero_std = frac_zero_std(rewards, self.num_generations)
            metrics[f"{task}/reward_mean"].append(mean)
            metrics[f"{task}/reward_std"].append(std)
            metrics[f"{task}/frac_reward_zero_std"].append(zero_std)
            if zero_std == 1.0:
                warn_once(
                    logger,
                    ("constant_rewards", task),
                    "All %s reward groups are constant in this batch (frac_reward_zero_std=1): advantages are 0 and "
                    "this task does not learn from it. Check the reward (%s) and the sampling temperature. Warned "
                    "once; %s/frac_reward_zero_std per step is in metrics.jsonl.",
                    task,
                    [f.name for f in self.task_reward_funcs[task]],
                    task,
                )
        metrics["pair_weight/mean"].append(global_weights.mean().item())
        lengths = self.accelerator.gather(completion_mask.sum(dim=1).float())
        metrics["understand/answer_length_mean"].append(lengths.mean().item())
        metrics["understand/answer_length_max"].append(lengths.max().item())

    def _maybe_log_images(self, pixels: torch.Tensor, captions: list[str], scores: torch.Tensor) -> None:
        step = self.state.global_step
        every = self.args.log_images_steps
        if not self.model.training or every <= 0 or step % every != 0 or step == self._last_image_log_step:
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

    def _image_cfg_weight(self) -> float | None:
        return self.args.cfg_weight if self.args.image_logprob == "cfg" else None

    def _task_logps(self, model, inputs: dict, task: str) -> torch.Tensor:
        """Per-token log-probs [N, L] (answers) or [N, I] (images) of the batch's rollouts under `model`."""
        core = self.accelerator.unwrap_model(model)
        if task == "understand":
            batch = janus.UnderstandingBatch(
                input_ids=inputs["und_input_ids"],
                attention_mask=inputs["und_attention_mask"],
                pixel_values=inputs["und_pixel_values"],
            )
            return janus.answer_token_logps(
                core, batch, inputs["und_completion_ids"], inputs["und_completion_mask"], temperature=self.temperature
            )
        batch = janus.GenerationBatch(
            input_ids=inputs["gen_input_ids"],
            attention_mask=inputs["gen_attention_mask"],
            uncond_input_ids=inputs["gen_uncond_input_ids"],
        )
        return janus.image_token_logps(
            core,
            batch,
            inputs["gen_image_tokens"],
            cfg_weight=self._image_cfg_weight(),
            temperature=self.args.image_temperature,
        )

    @torch.no_grad()
    def _batched_logps(self, model, inputs: dict, task: str) -> torch.Tensor:
        """`_task_logps` in chunks of `per_device_train_batch_size` rows (same chunking on every rank)."""
        n = inputs["und_input_ids"].shape[0]
        size = self.args.per_device_train_batch_size
        chunks = []
        for start in range(0, n, size):
            part = {k: v[start : start + size] for k, v in inputs.items() if isinstance(v, torch.Tensor) and v.ndim}
            chunks.append(self._task_logps(model, part, task))
        return torch.cat(chunks)

    def _old_and_ref_logps(self, inputs: dict) -> dict[str, torch.Tensor]:
        """Old log-probs only when the policy moves between generation and use (TRL's rule), ref ones when beta>0."""
        out = {}
        generate_every = self.args.steps_per_generation * self.num_iterations
        with self._timed("old_ref_logps"):
            for task, prefix in (("understand", "und"), ("generate", "gen")):
                if self.args.gradient_accumulation_steps % generate_every != 0:
                    out[f"{prefix}_old_per_token_logps"] = self._batched_logps(self.model, inputs, task)
                if self.beta != 0.0:
                    out[f"{prefix}_ref_per_token_logps"] = self._ref_logps(inputs, task)
        return out

    def _ref_logps(self, inputs: dict, task: str) -> torch.Tensor:
        if self.ref_model is not None:
            return self._batched_logps(self.ref_model, inputs, task)
        with adapters_disabled(self.accelerator.unwrap_model(self.model)):  # LoRA: the base model is the reference
            return self._batched_logps(self.model, inputs, task)

    # ---------------------------------------------------------------- loss ---------------------------------------

    def _compute_loss(self, model, inputs: dict) -> torch.Tensor:
        """Sum over tasks of weight_t * token-mean clipped surrogate (+ beta * KL), scaled for grad accumulation."""
        mode = "train" if self.model.training else "eval"
        losses = []
        for task, prefix, weight in (
            ("understand", "und", self.args.understanding_loss_weight),
            ("generate", "gen", self.args.generation_loss_weight),
        ):
            with self._timed(f"{task}_logps_forward"):
                per_token_logps = self._task_logps(model, inputs, task)
            if task == "understand":
                mask = inputs["und_completion_mask"].float()
            else:
                # Image completions are always the full 576 tokens with no EOS: never "truncated", all count.
                mask = torch.ones_like(per_token_logps)
            losses.append(weight * self._task_loss(per_token_logps, mask, inputs, prefix, task, mode))
        loss = losses[0] + losses[1]
        return loss / self.current_gradient_accumulation_steps if mode == "train" else loss

    def _task_loss(self, per_token_logps, mask, inputs: dict, prefix: str, task: str, mode: str) -> torch.Tensor:
        """Clipped surrogate of one task (TRL's epsilon / epsilon_high), normalised within the task."""
        advantages = inputs[f"{prefix}_advantages"].unsqueeze(1)  # [N, 1]
        old = inputs.get(f"{prefix}_old_per_token_logps")
        old = per_token_logps.detach() if old is None else old  # on-policy: ratio exactly 1 at the first use
        ratio = torch.exp(per_token_logps - old)
        clipped = torch.clamp(ratio, 1 - self.epsilon_low, 1 + self.epsilon_high)
        per_token_loss = -torch.min(ratio * advantages, clipped * advantages)
        if self.beta != 0.0:
            ref = inputs[f"{prefix}_ref_per_token_logps"]
            per_token_kl = torch.exp(ref - per_token_logps) - (ref - per_token_logps) - 1
            per_token_loss = per_token_loss + self.beta * per_token_kl
            self._metrics[mode][f"{task}/kl"].append(self._global_masked_mean(per_token_kl, mask))
        if self.loss_type == "grpo":  # sequence mean, then mean over sequences
            loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
        else:  # "bnpo": token mean over the task's active tokens in this micro-batch
            loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1)
        is_clipped = ((ratio < 1 - self.epsilon_low) & (advantages < 0)) | (
            (ratio > 1 + self.epsilon_high) & (advantages > 0)
        )
        self._metrics[mode][f"{task}/clip_ratio"].append(self._global_masked_mean(is_clipped.float(), mask))
        self._metrics[mode][f"{task}/ratio_mean"].append(self._global_masked_mean(ratio.detach(), mask))
        self._metrics[mode][f"{task}/loss"].append(self.accelerator.gather(loss.detach()).mean().item())
        sampled = inputs.get(f"{prefix}_sampling_per_token_logps")
        if sampled is not None and (task == "understand" or self.args.image_logprob == "cfg"):
            # Recomputed vs sampler log-probs: ~0 on the first use of a rollout if old/new/sampling see the same inputs.
            diff = (old - sampled).abs()
            self._metrics[mode][f"{task}/sampling_logp_abs_diff"].append(self._global_masked_mean(diff, mask))
        return loss

    def _global_masked_mean(self, values: torch.Tensor, mask: torch.Tensor) -> float:
        totals = torch.stack([(values.detach() * mask).sum(), mask.sum()])
        totals = self.accelerator.reduce(totals, reduction="sum")
        return (totals[0] / totals[1].clamp(min=1.0)).item()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """TRL's metric averaging, plus a `kl` key (mean over tasks) when beta > 0."""
        metrics = self._metrics["train" if self.model.training else "eval"]
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
