"""Worker for the multi-process tests of open_r1.logs / open_r1.run_dir, launched with torchrun (gloo, CPU).

torchrun --nproc_per_node 2 tests/open_r1/runlog_worker.py logs <out_dir>
torchrun --nproc_per_node 2 tests/open_r1/runlog_worker.py orphan <out_dir>
"""

import logging
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace


def logs(out: Path) -> None:
    """Every rank logs through the helpers and runs a DeepSpeed-style collective; stderr is checked by the test."""
    import torch
    import torch.distributed as dist
    from transformers import TrainerState

    from open_r1.logs import filter_known_warnings, warn_once
    from open_r1.run_dir import RunDirCallback
    from open_r1.trainer.reporting import ProgressLineCallback

    filter_known_warnings()
    logging.basicConfig(stream=sys.stderr, format="%(name)s %(message)s")
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    for step in (1, 2):
        warn_once(logging.getLogger("open_r1.test"), "same_every_step", "project warning at step %d", step)
        # The real deprecated torch collective ZeRO-3 calls every step (its FutureWarning must be filtered) ...
        gathered = torch.zeros(2)
        dist.all_gather_into_tensor(gathered, torch.ones(1))
    # ... while a warning nobody listed still shows (once per rank: it is not the project's).
    import warnings

    warnings.warn("an unlisted third-party warning", FutureWarning, stacklevel=1)
    state = TrainerState(max_steps=2, global_step=0, is_world_process_zero=rank == 0)
    callback = ProgressLineCallback()
    callback.on_train_begin(None, state, None)
    state.global_step = 1
    callback.on_log(None, state, None, logs={"loss": 0.5, "grad_norm": 1.0, "generate/reward_mean": 0.25})
    RunDirCallback().on_train_begin(SimpleNamespace(should_save=rank == 0, output_dir=str(out)), state, None)
    dist.destroy_process_group()


def orphan(out: Path) -> None:
    """Arm the launcher-death signal, report the PID, then train 'forever' (the test kills the launcher)."""
    from open_r1.run_dir import exit_with_launcher

    exit_with_launcher()
    (out / f"worker-{os.environ['RANK']}.pid").write_text(str(os.getpid()))
    time.sleep(120)


if __name__ == "__main__":
    {"logs": logs, "orphan": orphan}[sys.argv[1]](Path(sys.argv[2]))
