"""Learning check on Lumina-DiMOO: PairGRPO raises both tasks' mean reward on the tiny random masked-diffusion model.

The Lumina twin of `tests/open_r1/test_learning.py`, through the same trainer, with its synthetic token-level rewards:
generation = the share of image codes in the lower half of the codebook (read from the MaskGIT rollout), and
understanding = the share of even ids among the answer tokens (read from the LLaDA rollout; token-level too because
the tiny tokenizer decodes almost every id to a reserved placeholder, `<|reserved_N|>`, whose letters carry no
signal for `vowel_share`). Unlike the Janus test, each task learns in its own run while the other task's reward is
constant (zero advantages; its branch still samples and runs the loss): on a random masked-diffusion model every
masked slot has nearly the same hidden state and answer slots draw from the whole vocabulary, so the image codes
the generation reward boosts take over the answer slots too and swamp the text reward in a joint run (measured:
image reward 0.48 -> 0.94 in 14 steps while the text reward only fluctuated, 0.23-0.71). The rewards move only if
the trajectory log-probs of the revealed tokens carry the policy gradient.
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


def _rewards(holder: dict, learning: str) -> list[RewardFunc]:
    """The synthetic rewards; the task that is not `learning` gets a constant one."""

    def low_codes(prompts, completions, images, **kwargs):
        half = holder["trainer"].backbone.tokens.codebook_size // 2
        return (holder["trainer"].last_image_tokens < half).float().mean(dim=1).tolist()

    def even_ids(prompts, completions, **kwargs):
        trainer = holder["trainer"]
        even = (trainer.last_answer_tokens % 2 == 0).float()  # [N, L]
        mask = trainer.last_answer_mask.float()
        return ((even * mask).sum(1) / mask.sum(1).clamp_min(1)).tolist()

    def constant(prompts, completions, **kwargs):
        return [0.5] * len(completions)

    understand, generate = (even_ids, constant) if learning == "understand" else (constant, low_codes)
    return [
        RewardFunc("understand_reward", "understand", understand),
        RewardFunc("generate_reward", "generate", generate),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("learning", ["understand", "generate"])
def test_mean_reward_rises_on_lumina(tiny_dimoo_path, tmp_path, learning):
    torch.manual_seed(0)
    holder = {}
    funcs = _rewards(holder, learning)
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
    curve = [h[f"{learning}/reward_mean"] for h in history]
    first, last = sum(curve[:WINDOW]) / WINDOW, sum(curve[-WINDOW:]) / WINDOW
    assert last > first + MARGIN[learning], f"{learning} reward did not rise: {[round(c, 3) for c in curve]}"
