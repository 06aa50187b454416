"""PairGRPO trainer package: the TRL subclass, its tasks (tasks.py), loss math (loss.py), rollout helpers, reporting.

The trainer is loaded on first use (PEP 562 `__getattr__`), so `import open_r1.trainer.loss` stays light: importing a
submodule runs this file, and an eager import here would pull in TRL, transformers and DeepSpeed (issue 21).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from open_r1.trainer.pair_grpo_trainer import PairGRPOTrainer, freeze_modules

_LAZY = {"PairGRPOTrainer": "open_r1.trainer.pair_grpo_trainer", "freeze_modules": "open_r1.trainer.pair_grpo_trainer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PairGRPOTrainer", "freeze_modules"]
