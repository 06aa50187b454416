"""The output folder of a training run: who may write into it, which checkpoint is complete, how to stop the run.

- `prepare_output_dir`: refuse to start a new run in a folder that holds another run's outputs (it would append to
  its `metrics.jsonl` and a later resume would continue the wrong run) unless resuming or `--overwrite_output_dir`;
  the latter deletes only what a run writes and refuses when the folder holds anything else (docs/troubleshooting.md).
- `RunDirCallback`: writes `checkpoint-N/checkpoint_complete.json` after every rank has finished writing checkpoint-N,
  and `run.pid` (launcher and worker PIDs) while training runs.
- `resolve_resume`: `--resume_from_checkpoint true` picks the newest COMPLETE checkpoint and names the skipped ones.
- `exit_with_launcher`: workers die with their torchrun launcher, even when it is killed with SIGKILL.
"""

import atexit
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
from fnmatch import fnmatch
from pathlib import Path

import torch.distributed as dist
from transformers import TrainerCallback

from data_tools.jsonl import atomic_write_json, atomic_write_text
from janus.checkpoint import WEIGHT_FILES as MODEL_WEIGHT_FILES
from open_r1.logs import is_main_process

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete.json"
PID_FILE = "run.pid"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# One of these holds the model (full, sharded, or LoRA adapter); trainer_state.json is the HF Trainer's last write.
WEIGHT_FILES = (*MODEL_WEIGHT_FILES, "adapter_model.safetensors")  # + LoRA runs (open_r1.trainer.lora)
# Everything `open_r1/grpo.py` writes into output_dir (HF Trainer + TRL + open_r1.trainer.reporting + this module).
# `--overwrite_output_dir` deletes exactly these; anything else makes it refuse rather than delete a user's file.
RUN_OUTPUTS = (
    "checkpoint-*",
    "metrics.jsonl",
    "reward_curves.png",
    "samples",
    "runs",  # TensorBoard
    "wandb",
    PID_FILE,
    "README.md",  # TRL's model card
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "preprocessor_config.json",
    "processor_config.json",
    "training_args.bin",
    "all_results.json",
    "train_results.json",
    "trainer_state.json",
)


# ---------------------------------------------------------------- output folder ----------------------------------


# Folders whose NAME matches RUN_OUTPUTS but which a user may also fill (issue 25: `checkpoint-best/`, own files in
# `samples/`): a checkpoint folder must be `checkpoint-<step>`, and `samples/` may hold only the run's grids.
SAMPLE_FILE_RE = re.compile(r"^step_\d+\.png$")


def is_run_output(name: str, folder: Path | None = None) -> bool:
    """Whether `name` (an entry of the output folder `folder`) is something a run writes, hence safe to delete."""
    if name.startswith("checkpoint-"):
        return CHECKPOINT_RE.match(name) is not None
    if name == "samples" and folder is not None and (folder / name).is_dir():
        return all(SAMPLE_FILE_RE.match(p.name) and p.is_file() for p in (folder / name).iterdir())
    return any(fnmatch(name, pattern) for pattern in RUN_OUTPUTS)


def prepare_output_dir(output_dir: str, resuming: bool, overwrite: bool) -> None:
    """Check (every rank) and, with `overwrite`, clear (main process) the output folder before a run writes to it.

    Call it after the distributed state exists (the training config is built) and before the trainer.
    """
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"output_dir {output_dir} is a file, not a folder; fix: choose a new --output_dir")
    if resuming and overwrite:
        raise ValueError(
            "--overwrite_output_dir deletes the checkpoint --resume_from_checkpoint continues from; fix: drop one of "
            "them (resume the run, or start it over)"
        )
    entries = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if not entries or resuming:
        return
    if not overwrite:
        raise ValueError(
            f"output_dir {output_dir} is not empty ({_summary(entries)}). Pass --resume_from_checkpoint true to "
            "continue the run saved there, --overwrite_output_dir to delete that run's outputs and start over, or "
            "choose a new --output_dir."
        )
    foreign = [name for name in entries if not is_run_output(name, path)]
    if foreign:
        raise ValueError(
            f"--overwrite_output_dir: {output_dir} holds files a training run does not write ({_summary(foreign)}); "
            "they are left untouched. Move them away or choose a new --output_dir."
        )
    _barrier()  # every rank has checked the folder before the main process empties it
    if is_main_process():
        logger.warning("--overwrite_output_dir: deleting the previous run's outputs in %s: %s", output_dir, entries)
        for name in entries:
            target = path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
    _barrier()


def _summary(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} entries)" if len(names) > limit else "")


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


# ---------------------------------------------------------------- checkpoints ------------------------------------


def checkpoint_problem(checkpoint: str | os.PathLike, marker_required: bool = False) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None when it is complete.

    Complete = the completion marker, or (checkpoints written before the marker existed, `marker_required=False`)
    a readable `trainer_state.json` plus a weights file, which the HF Trainer writes after everything but the marker.
    """
    path = Path(checkpoint)
    if (path / COMPLETE_MARKER).is_file():
        return None
    if marker_required:
        return f"no {COMPLETE_MARKER} (the save was interrupted)"
    try:
        json.loads((path / "trainer_state.json").read_text())
    except FileNotFoundError:
        return "no trainer_state.json (the save was interrupted)"
    except (OSError, ValueError) as err:
        return f"unreadable trainer_state.json ({err})"
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        return f"no model weights ({' / '.join(WEIGHT_FILES)})"
    return None


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """`checkpoint-N` folders, newest (largest N) first."""
    path = Path(output_dir)
    found = [p for p in path.iterdir() if p.is_dir() and CHECKPOINT_RE.match(p.name)] if path.is_dir() else []
    return sorted(found, key=lambda p: int(CHECKPOINT_RE.match(p.name).group(1)), reverse=True)


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest complete `checkpoint-N`, warning (main process) about each newer incomplete one it skips.

    Once a run writes completion markers, a checkpoint without one is incomplete even if rank 0's files are all
    there: under ZeRO-3 another rank may have been killed while writing its shard.
    """
    checkpoints = list_checkpoints(output_dir)
    marker_required = _run_writes_markers(output_dir)
    for checkpoint in checkpoints:
        problem = checkpoint_problem(checkpoint, marker_required)
        if problem is None:
            return str(checkpoint)
        if is_main_process():
            logger.warning("Skipping incomplete checkpoint %s: %s.", checkpoint, problem)
    return None


def _run_writes_markers(output_dir: str | os.PathLike) -> bool:
    return any((p / COMPLETE_MARKER).is_file() for p in list_checkpoints(output_dir))


def resolve_resume(value: str | bool | None, output_dir: str) -> str | None:
    """`--resume_from_checkpoint`: None/false -> None; true/last -> newest complete checkpoint; a path -> checked."""
    if value is None or str(value).lower() in ("false", "none", ""):
        return None
    if str(value).lower() in ("true", "last"):
        last = last_complete_checkpoint(output_dir)
        if last is None and is_main_process():
            logger.warning(
                "resume_from_checkpoint=%s but %s has no complete checkpoint; starting fresh.", value, output_dir
            )
        return last
    path = Path(value)
    problem = checkpoint_problem(path, _run_writes_markers(path.parent)) if path.is_dir() else "no such folder"
    if problem is not None:
        raise ValueError(
            f"--resume_from_checkpoint {value}: {problem}. Pass an earlier checkpoint-N or `true` to pick the newest "
            "complete one."
        )
    return str(value)


def missing_marker(folder: str | os.PathLike) -> str | None:
    """Why `checkpoint-N` must not be read (export, evaluation) when its run writes completion markers and this one
    has none (its save was interrupted, possibly on another rank); None otherwise, also for non-checkpoint folders."""
    path = Path(folder)
    if (
        not CHECKPOINT_RE.match(path.name)
        or (path / COMPLETE_MARKER).is_file()
        or not _run_writes_markers(path.parent)
    ):
        return None
    return f"{path} has no {COMPLETE_MARKER} while other checkpoints of its run do (its save was interrupted)"


def finished_step(checkpoint: str | None, max_steps: int) -> int | None:
    """The step of `checkpoint` when it already reached `max_steps` (resuming would train past it), else None.

    The HF Trainer only checks max_steps after a step, so resuming a finished run in the middle of an epoch runs
    one more (issue 25); entry points stop before `train()` instead. `max_steps <= 0` (epochs) never finishes here.
    """
    if checkpoint is None or max_steps <= 0:
        return None
    step = json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"]
    return step if step >= max_steps else None


def resumed_run_is_finished(checkpoint: str | None, output_dir: str, max_steps: int) -> bool:
    """True when the resumed checkpoint already reached `max_steps` and the final model is in `output_dir`: nothing
    is left to train (issue 25: resuming a finished run trained "step 11/10" and rewrote the final model). Raises
    when the run finished but its final model is missing (the save after training was interrupted)."""
    step = finished_step(checkpoint, max_steps)
    if step is None:
        return False
    if not any((Path(output_dir) / name).is_file() for name in WEIGHT_FILES):
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint}: that run already finished (step {step} of max_steps "
            f"{max_steps}) but {output_dir} holds no final model; {checkpoint} holds the final weights: load or "
            "export it, or raise --max_steps to train further."
        )
    logger.warning(
        "%s is at step %d of max_steps %d: the run is finished, nothing to train (raise --max_steps to continue).",
        checkpoint,
        step,
        max_steps,
    )
    return True


# ---------------------------------------------------------------- the running job --------------------------------


class RunDirCallback(TrainerCallback):
    """Completion marker per checkpoint, and `run.pid` in output_dir while training runs."""

    def on_train_begin(self, args, state, control, **kwargs):
        pids = _gather([socket.gethostname(), os.getpid(), os.getppid()])
        if args.should_save:
            path, text = Path(args.output_dir) / PID_FILE, pid_file_text(pids, launched=_launched_by_torchrun())
            atomic_write_text(path, text)
            # A run that dies of an exception never reaches on_train_end: without this, run.pid would keep PIDs that
            # later belong to other processes (`kill $(cat run.pid)`). SIGKILL still leaves it; the next run rewrites.
            atexit.register(remove_pid_file, path, text)

    def on_save(self, args, state, control, **kwargs):
        # The HF Trainer calls on_save after writing model, optimizer, RNG and trainer_state.json and rotating old
        # checkpoints (transformers 5.23 `_save_checkpoint`); each rank writes its own ZeRO shards, so wait for all.
        _barrier()
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if args.should_save and checkpoint.is_dir():
            atomic_write_json(checkpoint / COMPLETE_MARKER, {"global_step": state.global_step})

    def on_train_end(self, args, state, control, **kwargs):
        if args.should_save:
            (Path(args.output_dir) / PID_FILE).unlink(missing_ok=True)


def remove_pid_file(path: Path, text: str) -> None:
    """Delete `run.pid` if it still lists this run's PIDs (a newer run in the same folder may have replaced it)."""
    try:
        if path.read_text() == text:
            path.unlink()
    except OSError:
        pass  # already gone


def pid_file_text(ranks: list[list], launched: bool) -> str:
    """One PID per line (`kill $(cat run.pid)`): the launcher, then the workers on the main process's host."""
    host = ranks[0][0]
    launchers = sorted({ppid for h, _, ppid in ranks if h == host}) if launched else []
    workers = [pid for h, pid, _ in ranks if h == host]
    return "".join(f"{pid}\n" for pid in launchers + workers)


def _gather(item: list) -> list[list]:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        items = [None] * dist.get_world_size()
        dist.all_gather_object(items, item)
        return items
    return [item]


def _launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def exit_with_launcher() -> bool:
    """Ask Linux to send this worker SIGTERM when its torchrun launcher dies (also on `kill -9` of the launcher).

    Without it the workers of a killed launcher keep training and writing checkpoints (issue 10). No-op outside
    torchrun or off Linux; returns whether it armed the signal.
    """
    if not _launched_by_torchrun() or not sys.platform.startswith("linux"):
        return False
    launcher = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return False
    if os.getppid() != launcher or launcher == 1:  # the launcher died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)
    return True
