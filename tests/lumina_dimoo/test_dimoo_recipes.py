"""The Lumina-DiMOO recipes parse to the paper's settings, and the tiny one trains end to end: `open_r1/grpo.py`, 2
processes under DeepSpeed ZeRO-3 (gloo, CPU), saving a checkpoint in the original layout that the loader reads."""

import sys
from pathlib import Path

import pytest
import torch
from trl import ModelConfig, TrlParser

from lumina_dimoo.checkpoint import load_pretrained
from open_r1.configs import PairGRPOConfig, PairScriptArguments

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "open_r1"))
from pairgrpo_helpers import write_pairs  # noqa: E402 (the trainer tests' helpers)
from test_configs import _world  # noqa: E402
from test_zero3 import launch_grpo, logged_steps  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("recipe", "world"), [("lumina_dimoo", 8), ("lumina_dimoo_tiny_cpu", 2)])
def test_recipes_parse(tmp_path, monkeypatch, recipe, world):
    _world(monkeypatch, world)
    parser = TrlParser((PairScriptArguments, PairGRPOConfig, ModelConfig))
    argv = ["--config", f"configs/recipes/{recipe}.yaml", "--output_dir", str(tmp_path), "--pair_data_path", "x"]
    _, args, _ = parser.parse_args_and_config([*argv, "--bf16", "false"])
    assert args.backbone == "lumina_dimoo" and args.num_generations == 2  # PairUni App. E: rollout size 2
    assert args.text_steps == 2 and args.image_logprob == "cfg" and args.beta == 0.0
    image, answer = args.image_sampling(), args.answer_sampling()
    assert answer.steps == 2 and answer.max_new_tokens % answer.steps == 0
    if recipe == "lumina_dimoo":
        assert image.steps == 35 and args.generation_batch_size // args.num_generations == 16


@pytest.mark.slow
def test_two_process_zero3_run_saves_a_loadable_checkpoint(tiny_dimoo_path, tmp_path):
    out, data = tmp_path / "run", write_pairs(tmp_path / "data")
    extra = ("--max_steps", "2", "--save_steps", "2", "--log_images_steps", "1")
    result = launch_grpo("lumina_dimoo_tiny_cpu", tiny_dimoo_path, data, out, *extra, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    steps = logged_steps(out)
    assert [r["step"] for r in steps] == [1, 2]
    # Trajectory log-probs equal the samplers' on both ranks (the same states rebuilt under ZeRO-3).
    assert all(r[f"{task}/sampling_logp_abs_diff"] < 1e-4 for r in steps for task in ("understand", "generate"))
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    model, _ = load_pretrained(out)  # the original layout, gathered from the ZeRO-3 shards
    initial, _ = load_pretrained(tiny_dimoo_path)
    trained, start = dict(model.named_parameters()), dict(initial.named_parameters())
    assert all(p.shape == start[n].shape for n, p in trained.items())
    assert not all(torch.equal(p, start[n]) for n, p in trained.items() if n.startswith("model."))
    assert all(torch.equal(p, start[n]) for n, p in trained.items() if n.startswith("vqvae."))
