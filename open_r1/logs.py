"""Readable training logs: known-harmless third-party warnings filtered by exact message, project warnings once.

Entry points (`open_r1/grpo.py`, ...) call `filter_known_warnings()` first thing. It silences only the warnings listed
in `KNOWN_HARMLESS_WARNINGS`, matched by category and full message, so any other warning (a new one included) still
shows. The project's own repeated warnings go through `warn_once`, which logs on the main process only.
"""

import logging
import os
import re
import warnings
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownWarning:
    category: type[Warning]
    message: str  # the full text, matched exactly
    why: str  # why it is harmless here (kept next to the message so the list stays reviewable)


KNOWN_HARMLESS_WARNINGS: tuple[KnownWarning, ...] = (
    # DeepSpeed ZeRO-3 (0.19.x) gathers / reduces parameters with these torch 2.14 collectives on every step; the
    # replacement API does not exist in DeepSpeed yet. Every rank printed both, twice per step (issue 16).
    KnownWarning(
        FutureWarning,
        "`torch.distributed.all_gather_into_tensor` is deprecated. "
        "Please use `torch.distributed.all_gather_single` instead.",
        "called by DeepSpeed ZeRO-3, not by this project",
    ),
    KnownWarning(
        FutureWarning,
        "`torch.distributed.reduce_scatter_tensor` is deprecated. "
        "Please use `torch.distributed.reduce_scatter_single` instead.",
        "called by DeepSpeed ZeRO-3, not by this project",
    ),
    # TRL 1.16's `unwrap_model_for_generation` uses the old names at every rollout (the last two only when
    # gradient checkpointing is on, as in the Janus-Pro recipes).
    KnownWarning(
        FutureWarning,
        "`is_gradient_checkpointing` is deprecated and will be removed in v6. Use `is_activation_checkpointing` "
        "instead.",
        "read by TRL 1.16 at every rollout, not by this project",
    ),
    KnownWarning(
        FutureWarning,
        "`gradient_checkpointing_disable` is deprecated and will be removed in v6. Use "
        "`activation_checkpointing_disable` instead.",
        "called by TRL 1.16 around every rollout",
    ),
    KnownWarning(
        FutureWarning,
        "`gradient_checkpointing_enable` is deprecated and will be removed in v6. Use "
        "`activation_checkpointing_enable` instead.",
        "called by TRL 1.16 around every rollout",
    ),
    # TRL 1.16's GRPOConfig still declares `gradient_checkpointing` (default True), so transformers 5.23 warns at every
    # config build even when no recipe sets it; the alias is resolved to `activation_checkpointing` correctly.
    KnownWarning(
        FutureWarning,
        "`gradient_checkpointing` is deprecated and will be removed in v6. Use `activation_checkpointing` instead.",
        "TRL's own config default",
    ),
)


def filter_known_warnings(known: tuple[KnownWarning, ...] = KNOWN_HARMLESS_WARNINGS) -> None:
    """Ignore exactly the listed warnings (category and whole message); everything else keeps the default action."""
    for item in known:
        # `message` is a regex matched at the start of the text: escape it and anchor the end, so a longer or
        # different message (a real problem) is not swallowed.
        warnings.filterwarnings("ignore", message=re.escape(item.message) + r"\Z", category=item.category)


def is_main_process() -> bool:
    """Rank 0 of the whole job; true in a single process. `RANK` is set by torchrun, accelerate and deepspeed."""
    return int(os.environ.get("RANK", "0")) == 0


_warned: set[Hashable] = set()


def warn_once(logger: logging.Logger, key: Hashable, msg: str, *args, main_process_only: bool = True) -> bool:
    """`logger.warning(msg, *args)` the first time `key` is seen in this process, and on the main process only.

    Use a key that holds what may change (e.g. `("constant_rewards", task)`) to warn once per run and per case.
    Returns whether it logged (useful in tests).
    """
    if key in _warned or (main_process_only and not is_main_process()):
        return False
    _warned.add(key)
    logger.warning(msg, *args)
    return True
