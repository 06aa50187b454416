"""Reward registry: names, weights, TRL signature, NaN-aware weighted combination and per-reward stats."""

import math

import pytest
import torch

from rewards import REWARD_NAMES, RewardFunc, build_reward_funcs, combine_rewards, reward_stats

QUESTION = "Which animal?\nA. cat\nB. dog"


def test_names_and_tasks():
    assert set(REWARD_NAMES) == {
        "accuracy",
        "format",
        "hps_v2.1",
        "demo_color",
        "toy_geneval",
        "unirl_answer",
        "unirl_image",
        "self_check",
    }
    funcs = build_reward_funcs(["accuracy", "format", "demo_color"], [1.0, 0.5, 2.0])
    assert [(f.name, f.__name__, f.task, f.weight) for f in funcs] == [
        ("accuracy", "accuracy", "understand", 1.0),
        ("format", "format", "understand", 0.5),
        ("demo_color", "demo_color", "generate", 2.0),
    ]
    assert not isinstance(funcs[0], torch.nn.Module)  # TRL would treat a Module as a reward model


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown reward") as error:
        build_reward_funcs(["accuracy", "clip_score"])
    assert all(name in str(error.value) for name in REWARD_NAMES)


@pytest.mark.parametrize(
    ("names", "weights", "match"),
    [
        (["accuracy", "format"], [1.0], "reward_weights"),
        (["accuracy"], [1.0, 2.0], "reward_weights"),
        (["accuracy"], [math.nan], "finite"),
        (["accuracy", "accuracy"], None, "duplicate"),
        (["hps_v2.1"], None, "hps_checkpoint"),
    ],
)
def test_invalid_configs(names, weights, match):
    with pytest.raises(ValueError, match=match):
        build_reward_funcs(names, weights)


def test_understand_funcs_have_trl_signature():
    accuracy, fmt = build_reward_funcs(["accuracy", "format"])
    completions = ["<think>barks</think><answer>B</answer>", "A", "x"]
    kwargs = {"answer": ["B", "B", None], "trainer_state": None, "log_metric": print}  # TRL passes extras
    assert accuracy([QUESTION] * 3, completions, **kwargs) == [1.0, 0.0, None]
    assert fmt([QUESTION] * 3, completions, **kwargs) == [1.0, 0.0, None]


def test_hps_reward_through_registry(tiny_hps_checkpoint, tiny_model_name, tiny_scorer):
    (hps,) = build_reward_funcs(["hps_v2.1"], hps_checkpoint=tiny_hps_checkpoint, hps_model_name=tiny_model_name)
    assert hps.task == "generate"
    images = torch.rand(3, 3, 40, 40) * 2 - 1
    prompts = ["a red apple", "a dog", "a car"]
    rewards = hps(prompts, [None] * 3, images=images)
    assert rewards == pytest.approx(tiny_scorer.score(images, prompts).tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="images"):
        hps(prompts, [None] * 3)


def test_combine_rewards_weighted_and_nan_aware():
    funcs = [
        RewardFunc("accuracy", "understand", lambda *a, **k: [], weight=1.0),
        RewardFunc("format", "understand", lambda *a, **k: [], weight=0.5),
        RewardFunc("hps_v2.1", "generate", lambda *a, **k: [], weight=2.0),
    ]
    per_func = {
        "accuracy": [1.0, 0.0, None, None],
        "format": [1.0, 1.0, None, None],
        "hps_v2.1": torch.tensor([math.nan, math.nan, 0.25, math.nan]),
    }
    total = combine_rewards(per_func, funcs)
    torch.testing.assert_close(total[:3], torch.tensor([1.5, 0.5, 0.5]))
    assert math.isnan(total[3])  # no applicable reward stays NaN, never a fake 0
    with pytest.raises(ValueError, match="per_func"):
        combine_rewards({"accuracy": [1.0]}, funcs)


def test_reward_stats_use_raw_values_of_applicable_rows():
    stats = reward_stats({"accuracy": [1.0, 0.0, None], "hps_v2.1": [None, None, None]})
    assert stats["rewards/accuracy/mean"] == pytest.approx(0.5)
    assert stats["rewards/accuracy/std"] == pytest.approx(0.5**0.5)  # unbiased, like TRL's nanstd
    assert math.isnan(stats["rewards/hps_v2.1/mean"])
