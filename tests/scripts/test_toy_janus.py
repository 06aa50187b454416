"""The toy Janus-Pro builder: original layout, round trip through load_pretrained / export_original, the cache."""

import json

import pytest
import torch

import janus
from janus.forward import num_image_tokens
from scripts.make_toy_janus import main as make_toy_main
from scripts.toy_janus import (
    LETTERS,
    SETTINGS_FILE,
    ToySettings,
    build_toy_checkpoint,
    make_world,
    noisy_targets,
    read_settings,
)

# A few steps of everything: checks the plumbing, not the learning (tests/open_r1/test_learning.py does that).
QUICK = dict(num_scenes=16, vq_steps=3, lm_steps=2, batch_size=4, eval_scenes=4)


@pytest.fixture(scope="module")
def quick_toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    summary = build_toy_checkpoint(out, ToySettings(**QUICK))
    return out, summary


def test_written_in_the_original_layout_with_settings(quick_toy):
    out, summary = quick_toy
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "multi_modality"
    assert config["gen_vision_config"]["params"]["codebook_size"] == ToySettings().codebook_size
    assert (out / "pytorch_model.bin").is_file()
    assert read_settings(out)["key"] == ToySettings(**QUICK).key() == summary["key"]
    for key in ("accuracy", "toy_geneval", "greedy_accuracy", "greedy_toy_geneval"):
        assert 0.0 <= summary[key] <= 1.0, key


def test_round_trip_through_load_pretrained_and_export_original(quick_toy, tmp_path):
    out, _ = quick_toy
    model, processor = janus.load_pretrained(out, dtype=torch.float32)
    assert num_image_tokens(model) == 16
    janus.export_original(model, processor.tokenizer, tmp_path / "again")
    again, _ = janus.load_pretrained(tmp_path / "again", dtype=torch.float32)
    first = model.state_dict()
    for name, tensor in again.state_dict().items():
        torch.testing.assert_close(tensor, first[name], rtol=0, atol=0, msg=name)
    sample = make_world(1, 0, 32)[0]
    batch = processor.encode_generation([sample.prompt])
    tokens = janus.sample_image_tokens(model, batch, generator=torch.Generator().manual_seed(0)).tokens
    same = janus.sample_image_tokens(again, batch, generator=torch.Generator().manual_seed(0)).tokens
    assert torch.equal(tokens, same)
    assert janus.decode_image_tokens(again, tokens).shape == (1, 3, 32, 32)


def test_settings_key_changes_with_any_setting():
    assert ToySettings().key() == ToySettings().key()
    assert ToySettings().key() != ToySettings(lm_steps=ToySettings().lm_steps + 1).key()


def test_cli_reuses_a_matching_build_and_refuses_a_foreign_folder(quick_toy, tmp_path, capsys):
    out, _ = quick_toy
    args = [f"--{k}={v}" for k, v in QUICK.items()]
    before = (out / "pytorch_model.bin").stat().st_mtime_ns
    assert make_toy_main(["--out_dir", str(out), "--reuse", *args]) == 0
    assert "reusing" in capsys.readouterr().out
    assert (out / "pytorch_model.bin").stat().st_mtime_ns == before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert make_toy_main(["--out_dir", str(foreign), *args]) == 2
    assert SETTINGS_FILE in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep"


def test_noisy_targets_keep_gold_without_noise_and_randomise_with_full_noise():
    world = make_world(64, 0, 32)
    tokens = torch.arange(64).unsqueeze(1).repeat(1, 16)  # row i's tokens are all i: traceable
    idx = torch.arange(64).repeat(50)  # 3,200 rows
    generator = torch.Generator().manual_seed(0)
    clean = ToySettings(answer_noise=0.0, image_noise=0.0)
    answers, targets = noisy_targets(world, tokens, idx, clean, generator)
    assert answers == [world[i].answer for i in idx.tolist()]
    assert torch.equal(targets, tokens[idx])
    noisy = ToySettings(answer_noise=1.0, image_noise=0.5)
    answers, targets = noisy_targets(world, tokens, idx, noisy, generator)
    gold = sum(a == world[i].answer for a, i in zip(answers, idx.tolist(), strict=True)) / len(idx)
    assert 0.2 < gold < 0.3  # a uniform letter is right 1 time in 4
    assert set(answers) == set(LETTERS)
    kept = (targets[:, 0] == idx).float().mean().item()
    assert 0.45 < kept < 0.6  # half kept, plus the random picks that land on the own scene (1 in 64)
    assert torch.equal(targets, targets[:, :1].expand(-1, 16))  # whole rows swapped, never mixed


def test_build_pins_its_thread_count_and_restores_the_callers(tmp_path):
    before = torch.get_num_threads()
    try:
        builds = []
        for ambient in (1, 2):
            torch.set_num_threads(ambient)
            build_toy_checkpoint(tmp_path / str(ambient), ToySettings(**QUICK, threads=2))
            assert torch.get_num_threads() == ambient
            builds.append(janus.load_pretrained(tmp_path / str(ambient), dtype=torch.float32)[0].state_dict())
    finally:
        torch.set_num_threads(before)
    for name, tensor in builds[0].items():
        torch.testing.assert_close(builds[1][name], tensor, rtol=0, atol=0, msg=name)
