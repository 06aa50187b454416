"""PairGRPO trainer package: the TRL subclass, its rollout helpers, and its reporting (grids, metrics file, plot)."""

from open_r1.trainer.pair_grpo_trainer import PairGRPOTrainer, freeze_modules

__all__ = ["PairGRPOTrainer", "freeze_modules"]
