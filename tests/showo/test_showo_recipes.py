"""The Show-o recipes parse to UniRL's settings, and the unchanged trainers run on the tiny Show-o: one UniRL GRPO
step, one PairGRPO step, one UniRL SFT step, and (slow) `open_r1/grpo.py` with 2 processes under DeepSpeed ZeRO-3
(gloo, CPU), saving a checkpoint in the original layout that the loader reads."""

import json
import sys
from pathlib import Path

import pytest
import torch
from trl import ModelConfig, TrlParser

from backbones import load_backbone
from data_tools.make_unirl_prompts import build_rows
from open_r1.configs import PairGRPOConfig, PairScriptArguments
from showo.checkpoint import load_pretrained
from showo.tiny import build_tiny_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "open_r1"))
from pairgrpo_helpers import QUESTION, tiny_args, write_pairs  # noqa: E402 (the trainer tests' helpers)
from test_configs import _world  # noqa: E402
from test_zero3 import launch_grpo, logged_steps  # noqa: E402


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-showo") / "showo")


def _parse(recipe: str, tmp_path):
    parser = TrlParser((PairScriptArguments, PairGRPOConfig, ModelConfig))
    argv = ["--config", f"configs/recipes/{recipe}.yaml", "--output_dir", str(tmp_path), "--pair_data_path", "x"]
    return parser.parse_args_and_config([*argv, "--bf16", "false"])[1]


def test_unirl_showo_recipe_has_unirls_settings(tmp_path, monkeypatch):
    _world(monkeypatch, 8)
    args = _parse("unirl_showo", tmp_path)
    assert args.backbone == "showo" and args.method == "unirl" and "unirl_image" in args.reward_funcs
    assert args.learning_rate == 1e-5 and args.num_generations == 3  # UniRL: group = per-GPU batch = 3
    assert args.per_device_train_batch_size == 3 and args.gradient_accumulation_steps == 1  # 3 rows per GPU
    image = args.image_sampling()
    assert (image.steps, image.cfg_weight, image.logprob, image.step_group) == (50, 5.0, "cfg", 1)  # w 5, T 50
    assert args.trainable_modules == ["language_model"] and args.beta == 0.0


@pytest.mark.parametrize(("recipe", "world", "method", "k"), [("showo", 8, "pairgrpo", 8), ("unirl_showo_tiny_cpu", 2,
                                                               "unirl", 3)])  # fmt: skip
def test_other_showo_recipes_parse(tmp_path, monkeypatch, recipe, world, method, k):
    _world(monkeypatch, world)
    args = _parse(recipe, tmp_path)
    assert args.backbone == "showo" and args.method == method and args.num_generations == k
    assert args.image_sampling().steps == (50 if recipe == "showo" else 4)
    if recipe == "showo":
        assert args.generation_batch_size // args.num_generations == 16  # PairUni's 16 pairs per step
        assert args.reward_funcs == ["accuracy", "hps_v2.1"]


def test_unirl_sft_showo_recipe_parses(tmp_path):
    from open_r1.trainer.unirl_sft import UniRLSFTConfig

    parser = TrlParser((PairScriptArguments, UniRLSFTConfig, ModelConfig))
    argv = ["--config", "configs/recipes/unirl_sft_showo.yaml", "--output_dir", str(tmp_path), "--pair_data_path", "x"]
    args = parser.parse_args_and_config([*argv, "--bf16", "false"])[1]
    assert args.backbone == "showo" and args.trainable_modules == ["language_model"] and not args.end_to_end
    assert args.per_device_train_batch_size == 3 and args.learning_rate == 1e-5  # UniRL's Show-o batch and lr


def answer_length(prompts, completions, **kwargs):
    return [len(c) / 40 for c in completions]  # dense: random tiny answers decode to strings of varied length


def mostly_red(prompts, completions, images, **kwargs):
    return (images[:, 0] > images[:, 1]).float().mean(dim=(1, 2)).tolist()


def _self_rows(folder: Path, with_pair: bool = True) -> Path:
    """UniRL self rows (prompt + question about the drawing), optionally after one PairUG pair with a file image."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    lines = [row.to_dict() for row in build_rows(7, seed=0)]
    if with_pair:
        Image.new("RGB", (32, 32), "red").save(folder / "red.png")
        question = QUESTION.format("red", "blue", "green", "yellow")
        lines.insert(0, {"similarity": 0.5, "pair_type": "retrieved",
                         "generate_ann": {"image_path": "red.png", "prompt": "a red square", "question": question,
                                          "answer": "A"},
                         "understand_ann": {"image_path": "red.png", "question": question, "answer": "A"}})  # fmt: skip
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _train_one_step(tiny_path, tmp_path, data_path, funcs, **overrides):
    from open_r1.dataset import load_pair_dataset
    from open_r1.trainer import PairGRPOTrainer

    torch.manual_seed(0)
    backbone, model = load_backbone(tiny_path)
    args = tiny_args(
        tmp_path / "run", num_generations_text=3, num_generations_image=3, image_steps=3, max_completion_length=4,
        cfg_weight=5.0, temperature=0.7, learning_rate=1e-3, understanding_prompt_template="{question}",
        reward_funcs=[f.name for f in funcs], **overrides,
    )  # fmt: skip
    data = load_pair_dataset(data_path)
    trainer = PairGRPOTrainer(model=model, backbone=backbone, reward_funcs=funcs, args=args, train_dataset=data)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    return trainer, moved


def test_unirl_grpo_step_on_the_tiny_model(tiny_path, tmp_path):
    from rewards import RewardFunc, build_reward_funcs

    # The random model answers no letter right (correctness rewards are all 0): a dense answer-length reward and
    # the red share of each image give both tasks a spread, so a gradient flows.
    funcs = [*build_reward_funcs(["accuracy", "unirl_image"]), RewardFunc("answer_length", "understand", answer_length),
             RewardFunc("red", "generate", mostly_red)]  # fmt: skip
    data = _self_rows(tmp_path / "data", with_pair=False)
    trainer, moved = _train_one_step(tiny_path, tmp_path, data, funcs, method="unirl", judge_max_new_tokens=2)
    assert {"showo.lm_head.weight", "showo.model.layers.0.self_attn.q_proj.weight"} <= moved
    assert not any(n.startswith("vq_model.") for n in moved)  # not in trainable_modules
    history = trainer.state.log_history[0]
    assert history["understand/sampling_logp_abs_diff"] < 1e-5 and history["generate/sampling_logp_abs_diff"] < 1e-5
    assert "timing/generate_judge" in history  # the greedy judge answered about every generated image


def test_pairgrpo_step_on_the_tiny_model(tiny_path, tmp_path):
    from rewards import RewardFunc

    funcs = [RewardFunc("answer_length", "understand", answer_length), RewardFunc("red", "generate", mostly_red)]
    trainer, moved = _train_one_step(tiny_path, tmp_path, write_pairs(tmp_path / "data"), funcs)
    assert {"showo.lm_head.weight", "showo.model.embed_tokens.weight"} <= moved
    history = trainer.state.log_history[0]
    assert history["understand/sampling_logp_abs_diff"] < 1e-5 and history["generate/sampling_logp_abs_diff"] < 1e-5


def test_unirl_sft_step_on_the_tiny_model(tiny_path, tmp_path):
    from open_r1.trainer.unirl_sft import UniRLSFTConfig, UniRLSFTTrainer, load_self_rows

    backbone, model = load_backbone(tiny_path)
    backbone.image_steps = 3  # the SFT config has no image_steps field: the backbone's default applies
    args = UniRLSFTConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=1, learning_rate=1e-3,
        lr_scheduler_type="constant", report_to="none", save_strategy="no", use_cpu=True, seed=0, logging_steps=1,
        dataloader_num_workers=0, cfg_weight=2.0, judge_max_new_tokens=2, image_nll=True,
        trainable_modules=["language_model"],
    )  # fmt: skip
    dataset = load_self_rows(str(_self_rows(tmp_path / "data", with_pair=False)))
    trainer = UniRLSFTTrainer(model=model, backbone=backbone, args=args, train_dataset=dataset)
    before = model.showo.lm_head.weight.detach().clone()
    trainer.train()
    history = trainer.state.log_history[0]
    assert history["answer_nll"] > 0 and 0.0 <= history["judge_accuracy"] <= 1.0 and "image_nll" in history
    assert not torch.equal(model.showo.lm_head.weight, before)
    with pytest.raises(ValueError, match="end_to_end"):  # Show-o has no straight-through image decoder
        UniRLSFTTrainer(model=model, backbone=backbone, args=UniRLSFTConfig(**{**args.to_dict(), "end_to_end": True}),
                        train_dataset=dataset)  # fmt: skip


@pytest.mark.slow
def test_two_process_zero3_unirl_run_saves_a_loadable_checkpoint(tiny_path, tmp_path):
    out = tmp_path / "run"
    extra = (
        *("--max_steps", "2", "--save_steps", "2", "--log_images_steps", "1"),
        # demo_color gives the image groups a spread (a random model answers no letter right), so weights move.
        *("--reward_funcs", "accuracy", "unirl_image", "demo_color", "--reward_weights", "1.0", "1.0", "1.0"),
    )
    result = launch_grpo("unirl_showo_tiny_cpu", tiny_path, _self_rows(tmp_path / "data"), out, *extra, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    steps = logged_steps(out)
    assert [r["step"] for r in steps] == [1, 2]
    # Recomputed log-probs equal the samplers' on both ranks (the same states rebuilt under ZeRO-3).
    assert all(r[f"{task}/sampling_logp_abs_diff"] < 1e-4 for r in steps for task in ("understand", "generate"))
    assert (out / "checkpoint-2" / "trainer_state.json").is_file() and (out / "metrics.jsonl").is_file()
    model, _, _ = load_pretrained(out)  # the original layout, gathered from the ZeRO-3 shards
    initial, _, _ = load_pretrained(tiny_path)
    trained, start = dict(model.named_parameters()), dict(initial.named_parameters())
    assert all(p.shape == start[n].shape for n, p in trained.items())
    assert not all(torch.equal(p, start[n]) for n, p in trained.items() if n.startswith("showo."))
    assert all(torch.equal(p, start[n]) for n, p in trained.items() if n.startswith("vq_model."))
