"""Fixtures of the trainer tests (helpers in pairgrpo_helpers.py)."""

import pytest
from pairgrpo_helpers import learnable_rewards, tiny_args, write_pairs


@pytest.fixture
def pair_jsonl(tmp_path):
    return write_pairs(tmp_path / "data")


@pytest.fixture
def make_trainer(tiny_janus_path, pair_jsonl):
    """Factory: a fresh PairGRPOTrainer on a fresh copy of the tiny model; returns (trainer, model)."""
    import torch

    from janus.backbone import JanusBackbone
    from open_r1.dataset import load_pair_dataset
    from open_r1.trainer import PairGRPOTrainer

    def make(output_dir, reward_funcs=None, data_path=None, trainer_cls=PairGRPOTrainer, **overrides):
        args = tiny_args(output_dir, **overrides)
        backbone, model = JanusBackbone.load(tiny_janus_path, dtype=torch.float32)
        funcs = reward_funcs if reward_funcs is not None else learnable_rewards()
        dataset = load_pair_dataset(data_path or pair_jsonl)
        trainer = trainer_cls(model=model, backbone=backbone, reward_funcs=funcs, args=args, train_dataset=dataset)
        return trainer, model

    return make
