"""Learning check on Lumina-DiMOO: PairGRPO raises both tasks' mean reward on the tiny random masked-diffusion model.

The Lumina twin of `tests/open_r1/test_learning.py`, through the same trainer, with its synthetic token-level rewards:
generation = the share of image codes in the lower half of the codebook (read from the MaskGIT rollout), and
understanding = the share of even ids among the answer tokens (read from the LLaDA rollout). The text reward is
token-level too because the tiny tokenizer decodes almost every id to a reserved placeholder (`<|reserved_N|>`),
whose letters carry no signal for `vowel_share`; it is parity, not "low ids", because answer slots draw from the
whole vocabulary and the image codes the generation reward boosts (ids above the text vocabulary) also surface
there: a "low text ids" reward falls as the image reward rises. Both rewards move only if the trajectory log-probs
of the revealed tokens carry the policy gradient.
"""

import sys
from pathlib import Path

import pytest
import torch

from backbones import load_backbone
from open_r1.dataset import load_pair_dataset
from rewards import RewardFunc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "open_r1"))
from pairgrpo_helpers import tiny_args, write_pairs  # noqa: E402 (the trainer tests' helpers)
from test_learning import MARGIN, STEPS, WINDOW, TokenRecordingTrainer  # noqa: E402 (the Janus twin)

# 5x the Janus test's rate: a once-sampled token must gain ~ln(V / samples) logits before it is drawn again, and V is
# 134548 answer ids / 8192 codes here (uniform at init) against the tiny Janus-Pro's few hundred ids / codes.
LR = 1e-1


class AnswerTokenRecordingTrainer(TokenRecordingTrainer):
    """Also keeps the last rollout's answer tokens and their mask for the token-level understanding reward."""

    def _rewards(self, rows, step):
        self.last_answer_tokens = step.answers.completion_ids  # [N, L]
        self.last_answer_mask = step.answers.completion_mask  # [N, L]
        return super()._rewards(rows, step)


def _rewards(holder: dict) -> list[RewardFunc]:
    def low_codes(prompts, completions, images, **kwargs):
        trainer = holder["trainer"]
        half = trainer.backbone.tokens.codebook_size // 2
        return (trainer.last_image_tokens < half).float().mean(dim=1).tolist()

    def even_ids(prompts, completions, **kwargs):
        trainer = holder["trainer"]
        even = (trainer.last_answer_tokens % 2 == 0).float()  # [N, L]
        mask = trainer.last_answer_mask.float()
        return ((even * mask).sum(1) / mask.sum(1).clamp_min(1)).tolist()

    return [RewardFunc("even_ids", "understand", even_ids), RewardFunc("low_codes", "generate", low_codes)]


@pytest.mark.slow
def test_mean_reward_rises_for_both_tasks_on_lumina(tiny_dimoo_path, tmp_path):
    torch.manual_seed(0)
    holder = {}
    funcs = _rewards(holder)
    backbone, model = load_backbone(tiny_dimoo_path)
    args = tiny_args(
        tmp_path / "run", reward_funcs=[f.name for f in funcs], max_steps=STEPS, learning_rate=LR,
        max_completion_length=6, text_steps=2, image_steps=4, cfg_weight=0.0,
        lr_scheduler_type="constant", trainable_modules=["language_model"],
    )  # fmt: skip
    trainer = AnswerTokenRecordingTrainer(
        model=model,
        backbone=backbone,
        reward_funcs=funcs,
        args=args,
        train_dataset=load_pair_dataset(write_pairs(tmp_path / "data")),
    )
    holder["trainer"] = trainer
    trainer.train()
    history = [h for h in trainer.state.log_history if "understand/reward_mean" in h]
    assert len(history) == STEPS
    # On-policy at every step's first update: the recomputed trajectory log-probs are the samplers'.
    assert all(h[f"{t}/sampling_logp_abs_diff"] < 1e-4 for h in history for t in ("understand", "generate"))
    for task in ("understand", "generate"):
        curve = [h[f"{task}/reward_mean"] for h in history]
        first, last = sum(curve[:WINDOW]) / WINDOW, sum(curve[-WINDOW:]) / WINDOW
        assert last > first + MARGIN[task], f"{task} reward did not rise: {[round(c, 3) for c in curve]}"
