"""Table tests of the PairGRPO loss math (open_r1.trainer.loss): surrogate, KL, normalisation, metric totals."""

import math

import pytest
import torch

from open_r1.trainer.loss import clipped_surrogate, masked_totals, mean_from_totals, normalise_loss

EPS = dict(epsilon_low=0.2, epsilon_high=0.2)


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected_loss", "clipped"),
    [
        (1.0, 1.0, -1.0, False),  # on-policy: -A
        (1.5, 1.0, -1.2, True),  # positive advantage: gain capped at 1 + eps
        (1.5, -1.0, 1.5, False),  # negative advantage: the unclipped (worse) term is kept
        (0.5, -1.0, 0.8, True),  # negative advantage: capped at 1 - eps
        (0.5, 1.0, -0.5, False),
        (1.1, 2.0, -2.2, False),  # inside the trust region: r * A
    ],
)
def test_clipped_surrogate_table(ratio, advantage, expected_loss, clipped):
    old = torch.zeros(1, 1)
    terms = clipped_surrogate(torch.full((1, 1), math.log(ratio)), old, torch.tensor([advantage]), **EPS)
    assert terms.per_token_loss.item() == pytest.approx(expected_loss, rel=1e-6)
    assert terms.ratio.item() == pytest.approx(ratio, rel=1e-6)
    assert bool(terms.is_clipped.item()) is clipped
    assert terms.per_token_kl is None


def test_asymmetric_clip_uses_epsilon_high_for_positive_advantages():
    terms = clipped_surrogate(
        torch.full((1, 1), math.log(2.0)), torch.zeros(1, 1), torch.tensor([1.0]), epsilon_low=0.2, epsilon_high=0.28
    )
    assert terms.per_token_loss.item() == pytest.approx(-1.28)


def test_kl_is_k3_and_added_with_beta():
    logps, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -2.0]])
    terms = clipped_surrogate(logps, logps, torch.tensor([0.0]), ref_logps=ref, beta=0.1, **EPS)
    expected_kl = math.exp(-0.5) + 0.5 - 1
    torch.testing.assert_close(terms.per_token_kl, torch.tensor([[expected_kl, 0.0]]))
    torch.testing.assert_close(terms.per_token_loss, 0.1 * terms.per_token_kl)
    with pytest.raises(ValueError, match="ref_logps"):
        clipped_surrogate(logps, logps, torch.tensor([0.0]), beta=0.1, **EPS)


def test_gradient_of_the_surrogate_is_minus_advantage_on_policy():
    logps = torch.tensor([[-1.0, -0.5]], requires_grad=True)
    terms = clipped_surrogate(logps, logps.detach(), torch.tensor([3.0]), **EPS)
    terms.per_token_loss.sum().backward()
    torch.testing.assert_close(logps.grad, torch.tensor([[-3.0, -3.0]]))


def test_dapo_masks_padding_and_divides_by_step_tokens_per_process():
    per_token = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, 5.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])  # the 100 is padding after EOS
    loss = normalise_loss(per_token, mask, "dapo", step_tokens=10, num_processes=2)
    assert loss.item() == pytest.approx((1 + 2 + 3 + 4 + 5) / (10 / 2))


def test_grpo_is_the_mean_of_sequence_means_over_accumulation():
    per_token = torch.tensor([[1.0, 3.0, 100.0], [4.0, 4.0, 4.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    loss = normalise_loss(per_token, mask, "grpo", accumulation_steps=2)
    assert loss.item() == pytest.approx((2.0 + 4.0) / 2 / 2)


def test_unknown_loss_type_and_missing_step_tokens_are_errors():
    with pytest.raises(ValueError, match="loss_type='bnpo'"):
        normalise_loss(torch.ones(1, 1), torch.ones(1, 1), "bnpo")
    with pytest.raises(ValueError, match="step_tokens"):
        normalise_loss(torch.ones(1, 1), torch.ones(1, 1), "dapo")


def test_dapo_gives_every_answer_token_of_a_step_the_same_gradient():
    # One optimizer step, two micro-batches: short answers (2 tokens) and long answers (10 tokens). Per-micro-batch
    # token means would give a short-answer token 5x the weight of a long-answer token; the step-wide count does not.
    masks = [torch.tensor([[1, 1] + [0] * 8]), torch.ones(1, 10, dtype=torch.long)]
    step_tokens = sum(int(m.sum()) for m in masks)
    grads = []
    for mask in masks:
        logps = torch.zeros(1, 10, requires_grad=True)
        terms = clipped_surrogate(logps, logps.detach(), torch.tensor([1.0]), **EPS)
        normalise_loss(terms.per_token_loss, mask, "dapo", step_tokens=step_tokens).backward()
        grads.append(logps.grad[mask.bool()])
    every = torch.cat(grads)
    torch.testing.assert_close(every, torch.full_like(every, -1.0 / step_tokens))


def test_masked_totals_reduce_to_a_masked_mean():
    values = torch.tensor([[1.0, 5.0], [3.0, 7.0]])
    mask = torch.tensor([[1, 0], [1, 1]])
    totals = masked_totals(values, mask)
    torch.testing.assert_close(totals, torch.tensor([11.0, 3.0]))
    assert mean_from_totals(totals + masked_totals(torch.tensor([[9.0]]), torch.ones(1, 1))) == pytest.approx(5.0)
    assert mean_from_totals(torch.zeros(2)) == 0.0


@pytest.mark.parametrize(
    ("advantage", "clipped"),
    [(-1.0, False), (1.0, False), (0.0, False)],  # ratio exactly at both bounds (eps 0): the bound does not bind
)
def test_is_clipped_is_strict_at_the_bounds(advantage, clipped):
    terms = clipped_surrogate(
        torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([advantage]), epsilon_low=0.0, epsilon_high=0.0
    )
    assert bool(terms.is_clipped.item()) is clipped


@pytest.mark.parametrize("ratio", [0.5, 1.5])
def test_zero_advantage_is_never_clipped(ratio):
    """Also: a ratio inside the trust region is never clipped, whatever the sign of the advantage."""
    inside = clipped_surrogate(torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([-1.0]), **EPS)
    assert not inside.is_clipped.item()
    terms = clipped_surrogate(torch.full((1, 1), math.log(ratio)), torch.zeros(1, 1), torch.tensor([0.0]), **EPS)
    assert not terms.is_clipped.item()


def test_small_positive_advantage_below_the_lower_bound_is_not_clipped():
    terms = clipped_surrogate(torch.full((1, 1), math.log(0.5)), torch.zeros(1, 1), torch.tensor([0.5]), **EPS)
    assert not terms.is_clipped.item()


def test_normalisers_at_one_token():
    per_token, one = torch.tensor([[3.0, 7.0]]), torch.tensor([[1, 0]])
    assert normalise_loss(per_token, one, "dapo", step_tokens=1).item() == pytest.approx(3.0)
    assert normalise_loss(per_token, one, "grpo").item() == pytest.approx(3.0)  # default: no accumulation
    assert mean_from_totals(torch.tensor([4.0, 1.0])) == pytest.approx(4.0)
