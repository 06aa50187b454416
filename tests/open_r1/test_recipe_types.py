"""A float in an integer recipe field, or a string in a list field, is named when the recipe is parsed, before any
model loads (issue 25)."""

import pytest
from trl import ModelConfig, TrlParser

from open_r1.configs import PairGRPOConfig, PairScriptArguments
from open_r1.trainer.unirl_sft import UniRLSFTConfig


def _parse(tmp_path, config_cls, line):
    """Parse a recipe holding `line` as the entry points do (TrlParser, --config)."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"use_cpu: true\nreport_to: none\n{line}\n")
    parser = TrlParser((PairScriptArguments, config_cls, ModelConfig))
    argv = ["--config", str(recipe), "--pair_data_path", "p.jsonl", "--output_dir", str(tmp_path / "out")]
    return parser.parse_args_and_config(argv)


@pytest.mark.parametrize(
    ("config_cls", "line", "field"),
    [
        (PairGRPOConfig, "num_generations: 4.5", "num_generations"),
        (PairGRPOConfig, "per_device_train_batch_size: 2.5", "per_device_train_batch_size"),
        (UniRLSFTConfig, "judge_max_new_tokens: 8.5", "judge_max_new_tokens"),
    ],
)
def test_a_float_for_an_int_field_names_the_field(tmp_path, config_cls, line, field):
    with pytest.raises(ValueError, match=rf"^{field}: .* is not an integer; fix: set {field} to a whole number"):
        _parse(tmp_path, config_cls, line)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("trainable_modules: language_model", "trainable_modules"),
        ("reward_funcs: accuracy", "reward_funcs"),
        ("reward_weights: 1.0", "reward_weights"),
    ],
)
def test_a_string_for_a_list_field_is_not_split_into_letters(tmp_path, line, field):
    with pytest.raises(ValueError, match=rf"^{field}: .* is a (str|float), not a list; fix: write it as a YAML list"):
        _parse(tmp_path, PairGRPOConfig, line)
