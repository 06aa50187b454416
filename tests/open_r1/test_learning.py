"""Learning check: with learnable synthetic rewards, PairGRPO raises both tasks' mean reward on the tiny model."""

import pytest

STEPS = 16
WINDOW = 4


@pytest.mark.slow
def test_mean_reward_rises_for_both_tasks(make_trainer, tmp_path):
    trainer, _ = make_trainer(
        tmp_path, max_steps=STEPS, learning_rate=2e-2, max_completion_length=6,
        lr_scheduler_type="constant",
        trainable_modules=["language_model", "generation_head"],
    )
    trainer.train()
    history = [h for h in trainer.state.log_history if "understand/reward_mean" in h]
    assert len(history) == STEPS
    for task in ("understand", "generate"):
        curve = [h[f"{task}/reward_mean"] for h in history]
        first, last = sum(curve[:WINDOW]) / WINDOW, sum(curve[-WINDOW:]) / WINDOW
        print(task, [round(c, 3) for c in curve])
        assert last > first + MARGIN[task], f"{task} reward did not rise: {first:.3f} -> {last:.3f}"


MARGIN = {"understand": 0.05, "generate": 0.02}
