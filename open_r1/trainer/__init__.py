"""PairGRPO trainer package: the TRL subclass, its tasks (tasks.py), loss math (loss.py), rollout helpers, reporting."""

from open_r1.trainer.pair_grpo_trainer import PairGRPOTrainer, freeze_modules

__all__ = ["PairGRPOTrainer", "freeze_modules"]
