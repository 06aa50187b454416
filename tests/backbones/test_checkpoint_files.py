"""Replacing a checkpoint inside a folder that holds an older one and other files (backbones/checkpoint_files.py)."""

import json

import pytest

from backbones.checkpoint_files import indexed_shards, replacing_checkpoint


def _old_sharded_run_folder(out):
    out.mkdir()
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "metrics.jsonl"):
        (out / name).write_text("old")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    (out / "checkpoint-10").mkdir()


def test_stale_files_go_new_ones_come_and_the_rest_stays(tmp_path):
    out = tmp_path / "run"
    _old_sharded_run_folder(out)
    index = out / "model.safetensors.index.json"
    stale = sorted(indexed_shards(index) | {index})
    assert [p.name for p in stale] == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]
    with replacing_checkpoint(out, stale) as staged:
        (staged / "model.safetensors").write_text("new")
        (staged / "config.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint-10",
        "config.json",
        "metrics.jsonl",
        "model.safetensors",
    ]
    assert (out / "model.safetensors").read_text() == "new"


def test_an_error_while_writing_changes_nothing(tmp_path):
    out = tmp_path / "run"
    _old_sharded_run_folder(out)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(OSError, match="disk full"):
        with replacing_checkpoint(out, [out / "model.safetensors.index.json"]) as staged:
            (staged / "model.safetensors").write_text("half")
            raise OSError("disk full")
    assert sorted(p.name for p in out.iterdir()) == before  # the staging folder is gone too
    assert (out / "model.safetensors.index.json").is_file()


def test_indexed_shards_of_a_missing_index_is_empty(tmp_path):
    assert indexed_shards(tmp_path / "model.safetensors.index.json") == set()
