"""Runtime setup of a PairGRPO run, in one place: process count, CPU/gloo + DeepSpeed, bf16, models outside ZeRO-3 init.

Order matters and is fixed by `open_r1/grpo.py`: `prepare_launch(argv)` before the config is parsed (it creates the
distributed state and turns bf16 off on a host without CUDA), models built inside `full_weights_on_every_rank(args)`.
The config classes describe the run and never probe the machine.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import yaml

logger = logging.getLogger(__name__)


def launch_world_size() -> int:
    """Processes of this launch as torchrun / accelerate / deepspeed announce them (`WORLD_SIZE`, default 1)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def uses_deepspeed(argv: list[str]) -> bool:
    """Whether the command line (or its `--config` YAML) asks for DeepSpeed."""
    if any(arg == "--deepspeed" or arg.startswith("--deepspeed=") for arg in argv):
        return True
    if "--config" in argv and argv.index("--config") + 1 < len(argv):
        with open(argv[argv.index("--config") + 1]) as f:
            return bool((yaml.safe_load(f) or {}).get("deepspeed"))
    return False


def prepare_launch(argv: list[str], cuda: bool | None = None) -> list[str]:
    """Set up what must exist before the config is built; returns the argv to parse.

    - No CUDA: bf16 needs a GPU, so `--bf16 false` is appended (the published GPU command also runs the CPU demo).
    - No CUDA and several processes: accelerate would pick no backend and every rank would believe it is alone
      (DeepSpeed then fails its batch-size check); a gloo `PartialState` is created first (accelerate told that
      DeepSpeed is in use when it is) and the config told to reuse it (`accelerator_config.use_configured_state`),
      which must be known when the config computes the world size.
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda:
        return list(argv)
    logger.warning("No CUDA device: training in fp32 (--bf16 false).")
    argv = [*argv, "--bf16", "false"]
    if launch_world_size() <= 1:
        return argv
    from accelerate import PartialState

    if uses_deepspeed(argv):
        os.environ.setdefault("ACCELERATE_USE_DEEPSPEED", "true")
        PartialState(backend="gloo")
    else:  # plain DDP over gloo
        PartialState(cpu=True, backend="gloo")
    if any(arg.startswith("--accelerator_config") for arg in argv):
        logger.warning("--accelerator_config is set: it must contain use_configured_state=true on a CPU-only host.")
        return argv
    return [*argv, "--accelerator_config", json.dumps({"use_configured_state": True})]


def model_dtype(requested: str | None, training_args) -> torch.dtype | None:
    """Weights dtype at load: `--dtype` (default "auto" = as stored) only under DeepSpeed mixed precision.

    DeepSpeed keeps fp32 master weights for the optimizer; without it (CPU, single GPU) bf16 weights would swallow
    1e-6 updates, so the model loads in fp32 and `--bf16` runs rollouts and loss under autocast (the trainer wraps
    them in `accelerator.autocast()`: the Janus code calls submodules, not the wrapped forward).
    """
    if not training_args.deepspeed or not (training_args.bf16 or training_args.fp16):
        return torch.float32
    if requested in (None, "auto"):
        return None
    return getattr(torch, requested)


@contextmanager
def full_weights_on_every_rank(training_args) -> Iterator[None]:
    """Build models outside `deepspeed.zero.Init`: DeepSpeed partitions the policy later, when the Trainer wraps it.

    With a ZeRO-3 config registered, transformers partitions parameters at construction; the Janus loader would copy
    full tensors into shape-[0] parameters, and reward models would be partitioned too.
    """
    from transformers.integrations.deepspeed import (
        is_deepspeed_zero3_enabled,
        set_hf_deepspeed_config,
        unset_hf_deepspeed_config,
    )

    if not is_deepspeed_zero3_enabled():
        yield
        return
    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        set_hf_deepspeed_config(training_args.hf_deepspeed_config)


__all__ = [
    "full_weights_on_every_rank",
    "launch_world_size",
    "model_dtype",
    "prepare_launch",
    "uses_deepspeed",
]
