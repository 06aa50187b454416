"""PairGRPOConfig validation and the published launch command."""

import pytest
from trl import ModelConfig, TrlParser

from open_r1.configs import PairGRPOConfig, PairScriptArguments

PUBLISHED = (
    "--deepspeed configs/zero3.json --output_dir {out} --model_name_or_path deepseek-ai/Janus-Pro-1B "
    "--pair_data_path data/pairs.jsonl --max_prompt_length 512 --num_generations_text 8 --num_generations_image 8 "
    "--per_device_train_batch_size 1 --gradient_accumulation_steps 2 --bf16 true --max_steps 8000 "
    "--learning_rate 1e-6"
)


def _config(tmp_path, **kwargs):
    return PairGRPOConfig(output_dir=str(tmp_path), report_to=[], **kwargs)


def test_published_command_parses(tmp_path, monkeypatch):
    # The command is for 8 ranks (torchrun --nproc_per_node=8): 1 row x 8 ranks x 2 steps = 2 pairs x 8 rollouts.
    monkeypatch.setattr(PairGRPOConfig, "world_size", property(lambda self: 8))
    parser = TrlParser((PairScriptArguments, PairGRPOConfig, ModelConfig))
    script, args, model = parser.parse_args_and_config(PUBLISHED.format(out=tmp_path).split())
    assert script.pair_data_path == "data/pairs.jsonl"
    assert args.max_prompt_length == 512 and args.num_generations == 8
    assert args.num_generations_text == args.num_generations_image == 8
    assert args.bf16 is False  # no CUDA here: the same command trains in fp32
    assert model.model_name_or_path == "deepseek-ai/Janus-Pro-1B"
    assert args.generation_batch_size == 16


@pytest.mark.parametrize("recipe", ["janus_pro_1b", "janus_pro_7b", "tiny_cpu"])
def test_recipes_parse(tmp_path, recipe):
    parser = TrlParser((PairScriptArguments, PairGRPOConfig, ModelConfig))
    argv = ["--config", f"configs/recipes/{recipe}.yaml", "--output_dir", str(tmp_path), "--pair_data_path", "x"]
    _, args, _ = parser.parse_args_and_config(argv)
    assert args.num_generations == args.num_generations_text
    assert args.pair_weighting == "sqrt" and args.beta == 0.0 and args.cfg_weight == 5.0


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
    assert _config(tmp_path, num_generations_text=4, per_device_train_batch_size=4).num_generations == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_logprob": "uncond"}, "image_logprob"),
        ({"pair_weighting": "log"}, "pair_weighting"),
        ({"trainable_modules": ["everything"]}, "trainable_modules"),
        ({"understanding_prompt_template": "no placeholder"}, "question"),
        ({"reward_weights": [1.0]}, "reward_weights"),
        ({"loss_type": "dapo"}, "loss_type"),
        ({"image_temperature": 0.0}, "image_temperature"),
    ],
)
def test_invalid_fields_name_the_fix(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _config(tmp_path, **kwargs)
