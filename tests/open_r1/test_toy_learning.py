"""The toy world learns: PairGRPO with the REAL rewards (accuracy, toy_geneval) raises both tasks on the toy Janus-Pro.

The toy checkpoint is the demo's (`scripts.toy_janus.ToySettings()` defaults, built by `scripts/make_toy_janus.py`,
about two minutes on 2 cores), the session fixture `toy_janus_path` (tests/conftest.py). One
process with 4 pairs per step stands in for the demo's 2 processes x 2 pairs; the recipe is the demo's
(configs/recipes/toy_cpu.yaml) with its 150 steps.
"""

from pathlib import Path

import pytest
import torch
import yaml

from data_tools.make_demo_data import main as make_demo_data
from janus.backbone import JanusBackbone
from open_r1.configs import PairGRPOConfig
from open_r1.dataset import load_pair_dataset
from open_r1.trainer import PairGRPOTrainer
from rewards import build_reward_funcs

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "recipes" / "toy_cpu.yaml"
STEPS = 150
MARGIN = 0.05  # last third over first third, both tasks; the demo shows >= 0.1, the test leaves room for CPU drift


def _thirds(curve: list[float]) -> tuple[float, float]:
    n = len(curve) // 3
    return sum(curve[:n]) / n, sum(curve[-n:]) / n


@pytest.mark.slow
def test_both_task_rewards_rise_on_the_toy_world(toy_janus_path, tmp_path):
    make_demo_data(["--out", str(tmp_path / "data"), "--pairs", "--size", "32"])
    recipe = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    names, weights = recipe.pop("reward_funcs"), recipe.pop("reward_weights")
    recipe |= dict(output_dir=str(tmp_path / "run"), max_steps=STEPS, save_strategy="no", log_images_steps=0)
    recipe |= dict(per_device_train_batch_size=2 * recipe["per_device_train_batch_size"], report_to=[])
    args = PairGRPOConfig(reward_funcs=names, **recipe)
    backbone, model = JanusBackbone.load(toy_janus_path, dtype=torch.float32)
    trainer = PairGRPOTrainer(
        model=model,
        backbone=backbone,
        reward_funcs=build_reward_funcs(names, weights),
        args=args,
        train_dataset=load_pair_dataset(tmp_path / "data" / "pairs" / "pairs.jsonl"),
    )
    trainer.train()
    history = [h for h in trainer.state.log_history if "understand/reward_mean" in h]
    assert len(history) == STEPS
    for task in ("understand", "generate"):
        curve = [h[f"{task}/reward_mean"] for h in history]
        first, last = _thirds(curve)
        assert last > first + MARGIN, f"{task}: first third {first:.3f}, last third {last:.3f}; curve {curve}"
