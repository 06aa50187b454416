"""PairGRPOConfig validation, batch meaning and the published launch command."""

import pytest
from trl import ModelConfig, TrlParser

from open_r1 import runtime
from open_r1.configs import UNSUPPORTED_TRL_OPTIONS, PairGRPOConfig, PairScriptArguments

PUBLISHED = (
    "--deepspeed configs/zero3.json --output_dir {out} --model_name_or_path deepseek-ai/Janus-Pro-1B "
    "--pair_data_path data/pairs.jsonl --max_prompt_length 512 --num_generations_text 8 --num_generations_image 8 "
    "--per_device_train_batch_size 1 --gradient_accumulation_steps 2 --bf16 true --max_steps 8000 "
    "--learning_rate 1e-6"
)


def _config(tmp_path, **kwargs):
    return PairGRPOConfig(output_dir=str(tmp_path), report_to=[], **{"bf16": False, **kwargs})


def _world(monkeypatch, size):
    """Pretend the launcher started `size` processes (the config reads it; TRL reads the property)."""
    monkeypatch.setattr(runtime, "launch_world_size", lambda: size)
    monkeypatch.setattr("open_r1.configs.launch_world_size", lambda: size)
    monkeypatch.setattr(PairGRPOConfig, "world_size", property(lambda self: size))


@pytest.mark.parametrize("world", [1, 2, 4, 8])
def test_published_command_trains_one_pair_per_device_per_micro_step(tmp_path, monkeypatch, world):
    # PairUni's launch command: 1 pair per device, 2 accumulation steps -> 2 * world pairs x 8 rollouts (16 on 8).
    _world(monkeypatch, world)
    parser = TrlParser((PairScriptArguments, PairGRPOConfig, ModelConfig))
    # As written (bf16 off only because this test may run on a CPU host; prepare_launch is tested on its own).
    script, args, model = parser.parse_args_and_config([*PUBLISHED.format(out=tmp_path).split(), "--bf16", "false"])
    assert script.pair_data_path == "data/pairs.jsonl" and model.model_name_or_path == "deepseek-ai/Janus-Pro-1B"
    assert args.max_prompt_length == 512 and args.num_generations_text == args.num_generations_image == 8
    assert args.pairs_per_device == 1 and args.per_device_train_batch_size == 8  # rows = pairs x K
    assert args.generation_batch_size // args.num_generations == 2 * world  # pairs per optimizer step
    assert args.step_summary(world).startswith(f"optimizer step = {2 * world} pairs x 8 rollouts per task")


@pytest.mark.parametrize(("world", "accumulation"), [(1, 16), (2, 8), (8, 2)])
def test_global_pairs_per_step_derives_accumulation(tmp_path, monkeypatch, world, accumulation):
    _world(monkeypatch, world)
    args = _config(tmp_path, per_device_train_batch_size=1, global_pairs_per_step=16, num_generations_text=8)
    assert args.gradient_accumulation_steps == accumulation
    assert args.generation_batch_size == 16 * 8


def test_global_pairs_per_step_must_divide(tmp_path, monkeypatch):
    _world(monkeypatch, 3)
    with pytest.raises(ValueError, match="global_pairs_per_step=16 is not a multiple"):
        _config(tmp_path, per_device_train_batch_size=1, global_pairs_per_step=16)


def test_prepare_launch_turns_bf16_off_only_without_cuda():
    assert runtime.prepare_launch(["--bf16", "true"], cuda=False)[-2:] == ["--bf16", "false"]
    assert runtime.prepare_launch(["--bf16", "true"], cuda=True) == ["--bf16", "true"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("delta", 2.0),
        ("importance_sampling_level", "sequence"),
        ("mask_truncated_completions", True),
        ("top_entropy_quantile", 0.2),
        ("entropy_coef", 0.1),
        ("use_vllm", True),
        ("sync_ref_model", True),
        ("min_p", 0.1),
        ("repetition_penalty", 1.2),
        ("vllm_importance_sampling_correction", False),
        ("off_policy_mask_threshold", 0.5),
        ("use_liger_kernel", True),
        ("cast_lm_head_to_fp32", True),
    ],
)
def test_unimplemented_trl_options_are_refused_by_name(tmp_path, name, value):
    assert name in UNSUPPORTED_TRL_OPTIONS
    with pytest.raises(ValueError, match=f"^{name}="):
        _config(tmp_path, **{name: value})


@pytest.mark.parametrize("recipe", ["janus_pro_1b", "janus_pro_1b_format", "janus_pro_7b", "tiny_cpu"])
def test_recipes_parse(tmp_path, monkeypatch, recipe):
    world = 2 if recipe == "tiny_cpu" else 8
    _world(monkeypatch, world)
    parser = TrlParser((PairScriptArguments, PairGRPOConfig, ModelConfig))
    argv = ["--config", f"configs/recipes/{recipe}.yaml", "--output_dir", str(tmp_path), "--pair_data_path", "x"]
    _, args, _ = parser.parse_args_and_config([*argv, "--bf16", "false"])
    assert args.num_generations == args.num_generations_text
    assert args.pair_weighting == "sqrt" and args.beta == 0.0 and args.cfg_weight == 5.0
    assert args.pairs_per_device == 1 and args.loss_type == "dapo"
    pairs_per_step = args.generation_batch_size // args.num_generations
    assert pairs_per_step == {"janus_pro_1b": 16, "janus_pro_1b_format": 16, "janus_pro_7b": 16, "tiny_cpu": 2}[recipe]
    if recipe in (
        "janus_pro_1b",
        "janus_pro_7b",
    ):  # the paper's rewards exactly: accuracy and HPS v2.1 (format is opt-in)
        assert args.reward_funcs == ["accuracy", "hps_v2.1"]


def test_paper_defaults(tmp_path):
    args = _config(tmp_path)
    assert (args.num_generations_text, args.cfg_weight, args.pair_weighting, args.image_logprob) == (
        8,
        5.0,
        "sqrt",
        "cfg",
    )
    assert args.trainable_modules == ["language_model"]
    assert args.gradient_checkpointing_kwargs["use_reentrant"] is False


def test_rollout_counts_must_match(tmp_path):
    with pytest.raises(ValueError, match="num_generations_text=4 != num_generations_image=8"):
        _config(tmp_path, num_generations_text=4, num_generations_image=8)
    assert _config(tmp_path, num_generations_text=4, per_device_train_batch_size=1).num_generations == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_logprob": "uncond"}, "image_logprob"),
        ({"pair_weighting": "log"}, "pair_weighting"),
        ({"trainable_modules": ["everything"]}, "trainable_modules"),
        ({"understanding_prompt_template": "no placeholder"}, "question"),
        ({"reward_weights": [1.0]}, "reward_weights"),
        ({"loss_type": "bnpo"}, "loss_type"),
        ({"eval_strategy": "steps"}, "eval_strategy"),
        ({"image_temperature": 0.0}, "image_temperature"),
    ],
)
def test_invalid_fields_name_the_fix(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _config(tmp_path, **kwargs)
