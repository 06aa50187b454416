"""Table-driven tests of the PairGRPO advantage and pair-weight equations (open_r1.advantages)."""

import math

import pytest
import torch

from open_r1.advantages import group_advantages, pair_advantages, pair_weights, rank_rows

NAN = math.nan


def _std(values):
    return torch.tensor(values, dtype=torch.float32).std().item()


@pytest.mark.parametrize(
    ("rewards", "group_size", "scale", "expected"),
    [
        # two groups of 2: (r - mean) / (std + eps), unbiased std
        ([1.0, 0.0, 0.0, 0.0], 2, True, [0.5 / (_std([1, 0]) + 1e-4), -0.5 / (_std([1, 0]) + 1e-4), 0.0, 0.0]),
        # identical rewards -> 0, never NaN
        ([0.7, 0.7, 0.7], 3, True, [0.0, 0.0, 0.0]),
        # centring only
        ([1.0, 2.0, 3.0, 10.0, 10.0, 13.0], 3, False, [-1.0, 0.0, 1.0, -1.0, -1.0, 2.0]),
        # NaN rewards are left out of the statistics and get 0
        ([1.0, NAN, 3.0], 3, False, [-1.0, 0.0, 1.0]),
        ([NAN, NAN], 2, True, [0.0, 0.0]),
        # one valid reward in a group: nothing to compare against
        ([5.0, NAN], 2, True, [0.0, 0.0]),
    ],
)
def test_group_advantages_table(rewards, group_size, scale, expected):
    out = group_advantages(torch.tensor(rewards), group_size, scale=scale)
    assert not torch.isnan(out).any()
    torch.testing.assert_close(out, torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_group_advantages_groups_are_independent():
    rewards = torch.tensor([0.0, 1.0, 100.0, 300.0])
    out = group_advantages(rewards, 2)
    torch.testing.assert_close(out[:2], group_advantages(rewards[:2], 2))
    torch.testing.assert_close(out[2:], group_advantages(rewards[2:], 2))
    # normalised: the scale of each group's rewards does not matter
    torch.testing.assert_close(out[:2], out[2:], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(("rewards", "group_size"), [(torch.zeros(5), 2), (torch.zeros(2, 2), 2), (torch.zeros(4), 0)])
def test_group_advantages_rejects_bad_shapes(rewards, group_size):
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(rewards, group_size)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("sqrt", [1.0, 0.5, 0.8, 0.0, 1.0]),
        ("linear", [1.0, 0.25, 0.64, 0.0, 1.0]),
        ("none", [1.0, 1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_pair_weights_table(mode, expected):
    similarity = torch.tensor([0.3, 0.25, 0.64, -0.2, 1.7])  # clamped to [0, 1]
    is_aligned = torch.tensor([True, False, False, False, False])
    torch.testing.assert_close(pair_weights(similarity, is_aligned, mode), torch.tensor(expected))


def test_pair_weights_aligned_ignores_nan_similarity():
    out = pair_weights(torch.tensor([NAN, 0.49]), torch.tensor([True, False]))
    torch.testing.assert_close(out, torch.tensor([1.0, 0.7]))


def test_pair_weights_nan_on_retrieved_pair_is_an_error():
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        pair_weights(torch.tensor([0.5, NAN]), torch.tensor([False, False]))


def test_pair_weights_rejects_unknown_mode_and_shape_mismatch():
    with pytest.raises(ValueError, match="sqrt"):
        pair_weights(torch.ones(2), torch.ones(2, dtype=torch.bool), mode="log")
    with pytest.raises(ValueError, match="match"):
        pair_weights(torch.ones(2), torch.ones(3, dtype=torch.bool))


# Group [0, 1, 2, 3]: mean 1.5, squared deviations sum to 5; unbiased variance 5 / (4 - 1), std sqrt(5/3) = 1.2910.
# (n + 1 would give std 1.0, n - 2 give 1.5811, n give 1.1180: each changes the advantages below.)
UNBIASED_STD = math.sqrt(5 / 3)


def test_group_std_divides_the_variance_by_n_minus_1():
    out = group_advantages(torch.tensor([0.0, 1.0, 2.0, 3.0]), 4, eps=0.0)
    torch.testing.assert_close(out, torch.tensor([-1.5, -0.5, 0.5, 1.5]) / UNBIASED_STD)


def test_group_std_counts_only_valid_rewards():
    # Valid [0, 1, 2, 3] with two NaN: still n = 4 valid rewards, the NaN rows get 0.
    out = group_advantages(torch.tensor([0.0, NAN, 1.0, 2.0, NAN, 3.0]), 6, eps=0.0)
    torch.testing.assert_close(out, torch.tensor([-1.5, 0.0, -0.5, 0.5, 0.0, 1.5]) / UNBIASED_STD)


@pytest.mark.parametrize(("scale", "divisor"), [(True, UNBIASED_STD), (False, 1.0)])
def test_pair_advantages_scale_each_task_per_pair_by_the_weight(scale, divisor):
    rewards = {
        "understand": torch.tensor([0.0, 1.0, 2.0, 3.0] * 2),
        "generate": torch.tensor([3.0, 2.0, 1.0, 0.0] * 2),
    }
    similarity = torch.tensor([1.0] * 4 + [0.25] * 4)
    is_aligned = torch.tensor([True] * 4 + [False] * 4)
    advantages, weights = pair_advantages(rewards, similarity, is_aligned, 4, scale=scale, weighting="sqrt")
    base = torch.tensor([-1.5, -0.5, 0.5, 1.5]) / divisor
    torch.testing.assert_close(weights, torch.tensor([1.0] * 4 + [0.5] * 4))
    torch.testing.assert_close(advantages["understand"], torch.cat([base, 0.5 * base]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(advantages["generate"], -advantages["understand"], rtol=1e-4, atol=1e-4)


def test_rank_rows_picks_this_ranks_rows():
    gathered = torch.arange(12)
    assert rank_rows(gathered, 0, 4).tolist() == [0, 1, 2, 3]
    assert rank_rows(gathered, 2, 4).tolist() == [8, 9, 10, 11]
    with pytest.raises(ValueError, match="rank 3"):
        rank_rows(gathered, 3, 4)


def test_group_of_one_rollout_has_zero_advantage():
    torch.testing.assert_close(group_advantages(torch.tensor([3.0, 5.0]), 1), torch.zeros(2))


def test_pair_advantages_default_to_scaled_sqrt_weighting():
    rewards = {"understand": torch.tensor([0.0, 1.0, 2.0, 3.0])}
    advantages, weights = pair_advantages(rewards, torch.full((4,), 0.25), torch.zeros(4).bool(), 4)
    torch.testing.assert_close(weights, torch.full((4,), 0.5))
    expected = 0.5 * torch.tensor([-1.5, -0.5, 0.5, 1.5]) / (UNBIASED_STD + 1e-4)
    torch.testing.assert_close(advantages["understand"], expected)


def test_pair_weight_errors_say_how_to_fix():
    with pytest.raises(ValueError, match=r"\(one entry per pair\)"):
        pair_weights(torch.ones(2), torch.ones(3).bool())
    with pytest.raises(ValueError, match="mark the pair `pair_type: aligned`"):
        pair_weights(torch.tensor([math.nan]), torch.zeros(1).bool())
