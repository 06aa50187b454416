"""Checkpoint export: saved models and real DeepSpeed ZeRO-3 checkpoints -> folders `janus.load_pretrained` loads."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import janus
from janus.checkpoint import CorruptCheckpointError
from open_r1.evaluation.export import ExportSource, export_checkpoint, map_state_dict, resolve_source

REPO = Path(__file__).resolve().parents[2]
SHIFT = 0.25


def _weights(folder):
    model, _ = janus.load_pretrained(folder, dtype=torch.float32)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same(actual, expected, shift=0.0):
    assert set(actual) == set(expected)
    for key, value in expected.items():
        target = value + shift if value.is_floating_point() else value
        assert torch.equal(actual[key], target), key


def test_export_saved_model_to_both_formats(tiny_janus, tiny_janus_path, tmp_path):
    model, _ = tiny_janus
    out, original = tmp_path / "hf", tmp_path / "original"
    export_checkpoint(tiny_janus_path, out, original_dir=original)
    assert json.loads((out / "config.json").read_text())["model_type"] == "janus"
    assert json.loads((original / "config.json").read_text())["model_type"] == "multi_modality"
    _assert_same(_weights(out), model.state_dict())
    _assert_same(_weights(original), model.state_dict())


def _stale_sharded_export(folder: Path, model) -> dict:
    """A target folder holding an older sharded export (other weights) plus a user's own file."""
    old = {k: (v + 1.0 if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    keys = sorted(old)
    folder.mkdir(parents=True)
    weight_map = {}
    for name, part in (
        ("model-00001-of-00002.safetensors", keys[::2]),
        ("model-00002-of-00002.safetensors", keys[1::2]),
    ):
        save_file({k: old[k].contiguous() for k in part}, str(folder / name))
        weight_map |= dict.fromkeys(part, name)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "notes.txt").write_text("mine")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_non_empty_target_is_refused_untouched_and_overwrite_replaces_stale_shards(
    tiny_janus, tiny_janus_path, tmp_path
):
    model, _ = tiny_janus
    out = tmp_path / "out"
    before = _stale_sharded_export(out, model)
    with pytest.raises(ValueError, match="is not empty.*--overwrite"):
        export_checkpoint(tiny_janus_path, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    export_checkpoint(tiny_janus_path, out, overwrite=True)
    names = {p.name for p in out.iterdir()}
    assert not any(n.startswith("model-0000") or n.endswith(".index.json") for n in names)  # stale shards gone
    assert "notes.txt" in names and "model.safetensors" in names
    _assert_same(_weights(out), model.state_dict())  # the NEW weights load, not the stale index


def test_failed_verification_leaves_the_targets_as_they_were(tiny_janus, tiny_janus_path, tmp_path, monkeypatch):
    import open_r1.evaluation.export as export

    model, _ = tiny_janus
    out = tmp_path / "out"
    before = _stale_sharded_export(out, model)

    def corrupt(model, folder):
        raise RuntimeError(f"{folder}: weight x differs after reload")

    monkeypatch.setattr(export, "_verify", corrupt)
    with pytest.raises(RuntimeError, match="differs after reload"):
        export_checkpoint(tiny_janus_path, out, original_dir=tmp_path / "orig", overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial folders, no half-written original


def test_colliding_targets_and_sources_are_refused(tiny_janus_path, tmp_path):
    with pytest.raises(ValueError, match="are the same folder"):
        export_checkpoint(tiny_janus_path, tmp_path / "x", original_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="overlaps the source"):
        export_checkpoint(tiny_janus_path, tiny_janus_path, overwrite=True)
    run = tmp_path / "run"
    _touch_zero(run / "checkpoint-4", 4)
    with pytest.raises(ValueError, match="--source model was asked"):
        export_checkpoint(run / "checkpoint-4" / "global_step4", tmp_path / "y", prefer="model")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_truncated_source_weights_name_the_file(tiny_janus, tmp_path):
    model, processor = tiny_janus
    folder = janus.save_pretrained(model, processor, tmp_path / "saved")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"saved/model.safetensors: .*truncated or corrupt"):
        export_checkpoint(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_reports_progress_and_a_summary(tiny_janus_path, tmp_path, monkeypatch, capsys, caplog):
    import runpy

    out = tmp_path / "exported"
    argv = ["export_checkpoint.py", "--checkpoint", str(tiny_janus_path), "--out_dir", str(out), "--dtype", "bf16"]
    monkeypatch.setattr("sys.argv", argv)
    with caplog.at_level("INFO", logger="open_r1.evaluation.export"):
        runpy.run_path(str(REPO / "scripts" / "export_checkpoint.py"), run_name="__main__")
    summary = capsys.readouterr().err
    assert f"transformers {out}" in " ".join(summary.split()) and "model.safetensors" in summary
    assert "every weight reloads identically" in summary
    assert "loading saved weights" in caplog.text and "done in" in caplog.text
    assert {p.dtype for p in janus.load_pretrained(out)[0].parameters()} == {torch.bfloat16}
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match="is not empty"):
        runpy.run_path(str(REPO / "scripts" / "export_checkpoint.py"), run_name="__main__")


def _touch_zero(folder: Path, step: int, latest: bool = True) -> None:
    (folder / f"global_step{step}").mkdir(parents=True)
    (folder / f"global_step{step}" / "zero_pp_rank_0_mp_rank_00_model_states.pt").write_bytes(b"")
    if latest:
        (folder / "latest").write_text(f"global_step{step}")


def test_resolve_source_finds_models_and_zero_checkpoints(tmp_path, tiny_janus_path):
    run = tmp_path / "run"
    for step in (2, 10):
        _touch_zero(run / f"checkpoint-{step}", step)
    assert resolve_source(run) == ExportSource("zero", run / "checkpoint-10", "global_step10")
    assert resolve_source(run, step=2) == ExportSource("zero", run / "checkpoint-2", "global_step2")
    tag_dir = run / "checkpoint-2" / "global_step2"
    assert resolve_source(tag_dir) == ExportSource("zero", run / "checkpoint-2", "global_step2")
    _touch_zero(tmp_path / "no_latest", 5, latest=False)
    assert resolve_source(tmp_path / "no_latest") == ExportSource("zero", tmp_path / "no_latest", "global_step5")
    assert resolve_source(tiny_janus_path) == ExportSource("model", tiny_janus_path)
    with pytest.raises(ValueError, match="step=7"):
        resolve_source(run, step=7)
    with pytest.raises(ValueError, match="no model weights"):
        resolve_source(run / "checkpoint-10", prefer="model")


def test_map_state_dict_strips_wrapper_prefix_and_checks_keys():
    expected = {"model.a.weight": torch.Size([2, 3]), "lm_head.weight": torch.Size([4, 2])}
    wrapped = {"module.model.a.weight": torch.ones(2, 3), "module.lm_head.weight": torch.zeros(4, 2)}
    wrapped["module.value_head.weight"] = torch.ones(1)
    mapped = map_state_dict(wrapped, expected)
    assert list(mapped) == ["model.a.weight", "lm_head.weight"] and torch.equal(
        mapped["model.a.weight"], torch.ones(2, 3)
    )
    assert set(map_state_dict({k[len("module.") :]: v for k, v in wrapped.items()}, expected)) == set(expected)
    with pytest.raises(ValueError, match="missing 1 keys"):
        map_state_dict({"module.model.a.weight": torch.ones(2, 3)}, expected)
    with pytest.raises(ValueError, match="shape mismatches"):
        map_state_dict({"model.a.weight": torch.ones(3, 2), "lm_head.weight": torch.zeros(4, 2)}, expected)


@pytest.fixture(scope="module")
def zero3_checkpoint(tiny_janus_path, tmp_path_factory):
    """An HF-style checkpoint folder: the saved model plus real ZeRO-3 shards of the model shifted by SHIFT."""
    folder = tmp_path_factory.mktemp("run") / "checkpoint-3"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MASTER_PORT": str(port)}
    script = Path(__file__).with_name("zero3_checkpoint.py")
    result = subprocess.run(
        [sys.executable, str(script), str(tiny_janus_path), str(folder), str(SHIFT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.mark.slow
def test_export_real_zero3_checkpoint(zero3_checkpoint, tiny_janus, tmp_path):
    model, _ = tiny_janus
    original = {k: v.clone() for k, v in model.state_dict().items()}
    assert (zero3_checkpoint / "latest").read_text().strip() == "global_step3"
    # --source zero: fp32 master weights from the shards (shifted), config/tokenizer from the same folder.
    export_checkpoint(zero3_checkpoint, tmp_path / "zero", prefer="zero", original_dir=tmp_path / "zero_original")
    _assert_same(_weights(tmp_path / "zero"), original, shift=SHIFT)
    _assert_same(_weights(tmp_path / "zero_original"), original, shift=SHIFT)
    # auto: the saved model weights win (the trainer's final save).
    export_checkpoint(zero3_checkpoint.parent, tmp_path / "auto")
    _assert_same(_weights(tmp_path / "auto"), original)
    # A checkpoint without saved weights: auto falls back to ZeRO and builds the model from config.json alone.
    (zero3_checkpoint / "model.safetensors").unlink()
    export_checkpoint(zero3_checkpoint.parent, tmp_path / "fallback", dtype=torch.float32)
    _assert_same(_weights(tmp_path / "fallback"), original, shift=SHIFT)
    # A truncated ZeRO shard is named before DeepSpeed's reader fails deep inside torch's zip loader.
    shard = next((zero3_checkpoint / "global_step3").glob("*model_states.pt"))
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(CorruptCheckpointError, match=shard.name):
        export_checkpoint(zero3_checkpoint.parent, tmp_path / "truncated", prefer="zero")
    assert not (tmp_path / "truncated").exists()
