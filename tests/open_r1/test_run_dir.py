"""open_r1.run_dir: refusing a used output folder, complete-checkpoint selection, run.pid, dying with the launcher."""

import json
import logging
import os
import signal
import subprocess
import time
from types import SimpleNamespace

import pytest
import torch
from test_logs import torchrun
from torch import nn
from transformers import Trainer, TrainingArguments

from open_r1.run_dir import (
    COMPLETE_MARKER,
    PID_FILE,
    RunDirCallback,
    checkpoint_problem,
    last_complete_checkpoint,
    pid_file_text,
    prepare_output_dir,
    resolve_resume,
)


def write_checkpoint(folder, step, *, state=True, marker=False):
    """The files the HF Trainer + DeepSpeed write into checkpoint-N (the demo's layout), in their order."""
    path = folder / f"checkpoint-{step}"
    (path / f"global_step{step}").mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "scheduler.pt", "rng_state_0.pth", "latest"):
        (path / name).write_bytes(b"x")
    (path / f"global_step{step}" / "zero_pp_rank_0_mp_rank_00_optim_states.pt").write_bytes(b"x")
    if state:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if marker:
        (path / COMPLETE_MARKER).write_text(json.dumps({"global_step": step}))
    return path


# ---------------------------------------------------------------- output folder ----------------------------------


def test_new_run_refuses_a_used_folder(tmp_path):
    prepare_output_dir(str(tmp_path / "new"), resuming=False, overwrite=False)  # missing: fine
    prepare_output_dir(str(tmp_path), resuming=False, overwrite=False)  # empty: fine
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    write_checkpoint(tmp_path, 3)
    with pytest.raises(ValueError, match="not empty.*--resume_from_checkpoint true.*--overwrite_output_dir"):
        prepare_output_dir(str(tmp_path), resuming=False, overwrite=False)
    prepare_output_dir(str(tmp_path), resuming=True, overwrite=False)  # resuming: untouched
    assert (tmp_path / "metrics.jsonl").exists() and (tmp_path / "checkpoint-3").exists()


def test_overwrite_deletes_only_run_outputs_and_refuses_foreign_files(tmp_path):
    write_checkpoint(tmp_path, 3)
    for name in ("metrics.jsonl", "model.safetensors", "README.md", "run.pid", "samples/step_000002.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "my_notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="does not write \\(my_notes.txt\\)"):
        prepare_output_dir(str(tmp_path), resuming=False, overwrite=True)
    assert (tmp_path / "checkpoint-3").exists()  # refused before deleting anything
    (tmp_path / "my_notes.txt").unlink()
    prepare_output_dir(str(tmp_path), resuming=False, overwrite=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("user_file", ["checkpoint-best/model.safetensors", "samples/my_favourite.png"])
def test_overwrite_keeps_a_users_checkpoint_best_and_own_sample_files(tmp_path, user_file):
    """Issue 25: `checkpoint-*` matched a user's `checkpoint-best/`, and all of `samples/` went with its user files."""
    write_checkpoint(tmp_path, 3)
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "step_000002.png").write_text("x")
    (tmp_path / user_file).parent.mkdir(exist_ok=True)
    (tmp_path / user_file).write_text("keep me")
    with pytest.raises(ValueError, match=f"does not write \\({user_file.split('/')[0]}\\)"):
        prepare_output_dir(str(tmp_path), resuming=False, overwrite=True)
    assert (tmp_path / user_file).read_text() == "keep me" and (tmp_path / "checkpoint-3").exists()


# ---------------------------------------------------------------- checkpoints ------------------------------------


def test_resume_skips_a_checkpoint_killed_mid_save(tmp_path, caplog):
    write_checkpoint(tmp_path, 3)  # written before markers existed: all files there -> accepted
    write_checkpoint(tmp_path, 6, state=False)  # killed before trainer_state.json
    (tmp_path / "checkpoint-9").mkdir()  # killed right after mkdir
    with caplog.at_level(logging.WARNING):
        assert resolve_resume("true", str(tmp_path)) == str(tmp_path / "checkpoint-3")
    assert (
        "checkpoint-9: no trainer_state.json" in caplog.text and "checkpoint-6: no trainer_state.json" in caplog.text
    )
    with pytest.raises(ValueError, match="checkpoint-6: no trainer_state.json.*earlier checkpoint-N or `true`"):
        resolve_resume(str(tmp_path / "checkpoint-6"), str(tmp_path))
    assert resolve_resume(str(tmp_path / "checkpoint-3"), str(tmp_path)) == str(tmp_path / "checkpoint-3")
    assert resolve_resume(None, str(tmp_path)) is None and resolve_resume("false", str(tmp_path)) is None


def test_once_markers_exist_a_checkpoint_without_one_is_incomplete(tmp_path):
    write_checkpoint(tmp_path, 3, marker=True)
    newest = write_checkpoint(tmp_path, 6)  # rank 0's files complete, another rank's shard maybe not
    assert checkpoint_problem(newest) is None  # alone it would pass the legacy check
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-3")
    (newest / "trainer_state.json").write_text('{"global_st')  # truncated write
    assert "unreadable trainer_state.json" in checkpoint_problem(newest)
    no_weights = write_checkpoint(tmp_path / "other_run", 1)
    (no_weights / "model.safetensors").unlink()
    assert "no model weights" in checkpoint_problem(no_weights)


def test_no_complete_checkpoint_starts_fresh(tmp_path):
    assert resolve_resume("last", str(tmp_path)) is None
    write_checkpoint(tmp_path, 2, state=False)
    assert resolve_resume("true", str(tmp_path)) is None


class TinyRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x, labels):
        return {"loss": ((self.linear(x).squeeze(-1) - labels) ** 2).mean()}


def test_real_trainer_marks_checkpoints_and_resumes_from_the_last_complete_one(tmp_path):
    data = [{"x": torch.randn(2), "labels": torch.tensor(1.0)} for _ in range(8)]

    def trainer(max_steps):
        args = TrainingArguments(
            output_dir=str(tmp_path), max_steps=max_steps, save_steps=1, per_device_train_batch_size=2,
            report_to="none", use_cpu=True, disable_tqdm=True, logging_steps=1,
        )  # fmt: skip
        return Trainer(model=TinyRegression(), args=args, train_dataset=data, callbacks=[RunDirCallback()])

    trainer(2).train()
    for step in (1, 2):  # the marker lands after trainer_state.json (on_save runs after _save_checkpoint)
        assert json.loads((tmp_path / f"checkpoint-{step}" / COMPLETE_MARKER).read_text()) == {"global_step": step}
    assert not (tmp_path / PID_FILE).exists()  # removed at the end of training
    (tmp_path / "checkpoint-2" / COMPLETE_MARKER).unlink()  # killed between trainer_state.json and the marker
    resume = resolve_resume("true", str(tmp_path))
    assert resume == str(tmp_path / "checkpoint-1")
    resumed = trainer(3)
    resumed.train(resume_from_checkpoint=resume)
    assert resumed.state.global_step == 3 and (tmp_path / "checkpoint-3" / COMPLETE_MARKER).is_file()


# ---------------------------------------------------------------- stopping a run ---------------------------------


def test_resuming_a_finished_run_trains_nothing_and_keeps_the_final_model(tmp_path):
    """Issue 25: resuming checkpoint-10 of a max_steps 10 run trained "step 11/10" and rewrote the final model."""
    from open_r1.run_dir import resumed_run_is_finished

    checkpoint = str(write_checkpoint(tmp_path, 10))
    with pytest.raises(ValueError, match="already finished \\(step 10 of max_steps 10\\).*holds no final model"):
        resumed_run_is_finished(checkpoint, str(tmp_path), max_steps=10)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert resumed_run_is_finished(checkpoint, str(tmp_path), max_steps=10)
    assert not resumed_run_is_finished(checkpoint, str(tmp_path), max_steps=12)  # more to train
    assert not resumed_run_is_finished(None, str(tmp_path), max_steps=10)


def test_pid_file_lists_launcher_then_workers_of_the_main_host():
    ranks = [["node0", 101, 100], ["node0", 102, 100], ["node1", 201, 200]]
    assert pid_file_text(ranks, launched=True) == "100\n101\n102\n"
    assert pid_file_text([["node0", 101, 1]], launched=False) == "101\n"


def test_run_pid_written_at_start_removed_at_end(tmp_path):
    args, state = SimpleNamespace(should_save=True, output_dir=str(tmp_path)), SimpleNamespace()
    RunDirCallback().on_train_begin(args, state, None)
    assert (tmp_path / PID_FILE).read_text().split() == [str(os.getpid())]
    RunDirCallback().on_train_end(args, state, None)
    assert not (tmp_path / PID_FILE).exists()


@pytest.mark.slow
def test_workers_stop_when_the_launcher_is_killed_hard(tmp_path):
    """`kill -9` of torchrun: the workers (which armed `exit_with_launcher`) exit instead of training on."""
    launcher = torchrun("orphan", tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("worker-*.pid"))) < 2:
        assert time.monotonic() < deadline and launcher.poll() is None, "workers did not start"
        time.sleep(0.2)
    workers = [int(p.read_text()) for p in tmp_path.glob("worker-*.pid")]
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in workers if _alive(pid)]
    for pid in alive:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their launcher"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
