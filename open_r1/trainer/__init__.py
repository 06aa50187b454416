"""PairGRPO trainer package: the TRL subclass, the task batches (task_batch.py), loss math (loss.py), rollout helpers,
reporting. Imported lazily, so `import open_r1.trainer.loss` does not load the trainer (and TRL).
"""

__all__ = ["PairGRPOTrainer", "freeze_modules"]


def __getattr__(name: str):
    if name in __all__:
        from open_r1.trainer import pair_grpo_trainer

        return getattr(pair_grpo_trainer, name)
    raise AttributeError(f"module 'open_r1.trainer' has no attribute {name!r}")
