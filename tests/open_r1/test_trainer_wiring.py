"""Trainer wiring that T = 1, frozen vision and step-0 checks cannot see (issue 25 §1): temperatures, masks, own-image
pixels with a trainable vision side, KL against the reference, and the dapo token count across steps and ranks."""

import pytest
import torch
from pairgrpo_helpers import learnable_rewards
from test_unirl_grpo import UNIRL, _write_mixed, make_unirl_trainer  # noqa: F401, F811 (a fixture)

import janus.sampling as janus_sampling
from janus.forward import num_image_tokens

K = 4  # tiny_args: num_generations


def _rows(trainer, pairs: int = 2):
    return [dict(trainer.train_dataset[i]) for i in range(pairs) for _ in range(K)]  # what TRL's RepeatSampler yields


def test_sampler_and_recomputed_logps_agree_away_from_temperature_one(make_trainer, tmp_path):
    # At T = 1 a log-prob pass that forgets the temperature gives the same numbers; at 0.7 / 0.6 it does not.
    trainer, _ = make_trainer(tmp_path, temperature=0.7, image_temperature=0.6)
    trainer.train()
    logs = trainer.state.log_history[0]
    assert logs["understand/sampling_logp_abs_diff"] < 1e-4
    assert logs["generate/sampling_logp_abs_diff"] < 1e-4


def test_answer_masks_end_at_eos_and_image_masks_cover_the_grid(make_trainer, tmp_path, monkeypatch):
    trainer, model = make_trainer(tmp_path, max_completion_length=6)
    eos = trainer.backbone.processor.special.eos_id
    real_pick, step = janus_sampling.pick_tokens, {"answer": 0}
    text_vocab = model.lm_head.out_features

    def eos_at_row_index(logits, **kwargs):
        tokens, logps = real_pick(logits, **kwargs)
        if logits.shape[-1] == text_vocab:  # the answer loop (the image loop draws from the image codebook)
            tokens = tokens.masked_fill(tokens == eos, eos + 1)  # no early EOS from the random model
            tokens[step["answer"]] = eos  # row i ends with EOS at position i (rows 6, 7 never end)
            step["answer"] += 1
        return tokens, logps

    monkeypatch.setattr(janus_sampling, "pick_tokens", eos_at_row_index)
    inputs = trainer._generate_and_score_completions(_rows(trainer))
    assert step["answer"] == 6, "the answer loop ran for another number of steps than max_completion_length"
    ids, mask = inputs["understand/completion_ids"], inputs["understand/completion_mask"]
    for i in range(2 * K):
        length = i + 1 if i < 6 else 6
        assert mask[i].tolist() == [1] * length + [0] * (mask.shape[1] - length), f"row {i}"
        if i < 6:
            assert ids[i, i] == eos, f"row {i}: EOS must be the last counted token"
    grid = num_image_tokens(model)
    image_mask = inputs["generate/completion_mask"]
    assert image_mask.shape == (2 * K, grid)
    assert image_mask.sum(dim=1).tolist() == [grid] * (2 * K)  # no EOS in images: every one of the grid counts
    assert inputs["generate/step_tokens"].item() == 2 * K * grid


@pytest.mark.parametrize("trainable", [["language_model", "aligner"], ["language_model", "vision_model"]])
def test_own_image_answers_see_generated_pixels_with_a_trainable_vision_side(
    make_unirl_trainer,  # noqa: F811 (the fixture imported above)
    tmp_path,
    trainable,
):
    # A frozen vision side reuses the rollout's image features for every pass, hiding a sampler that saw other pixels
    # than the loss; trainable, each pass encodes the pixels again, so the two log-probs agree only if they match.
    trainer, model = make_unirl_trainer(tmp_path / "run", _write_mixed(tmp_path / "data"), UNIRL, learnable_rewards(),
                                        trainable_modules=trainable)  # fmt: skip
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.train()
    logs = trainer.state.log_history[0]
    assert logs["understand/sampling_logp_abs_diff"] < 1e-4
    group = "model.aligner." if "aligner" in trainable else "model.vision_model."
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n.startswith(group))


def test_kl_is_against_the_reference_once_the_policy_moved(make_trainer, tmp_path):
    # Step 1-2 share one generation batch; step 3 samples anew from the twice-updated policy. Its old log-probs are
    # that policy's (ratio 1 at first use), while the reference is still the initial model: KL > 0. A KL taken
    # against the old policy would read 0 there.
    trainer, _ = make_trainer(tmp_path, beta=0.04, max_steps=3, steps_per_generation=2, num_iterations=1)
    trainer.train()
    history = [h for h in trainer.state.log_history if "understand/kl" in h]
    assert len(history) == 3
    third = history[2]
    for task in ("understand", "generate"):
        assert third[f"{task}/kl"] > 1e-7, task
        assert third[f"{task}/ratio_mean"] == pytest.approx(1.0, abs=1e-5), task
        assert abs(history[1][f"{task}/ratio_mean"] - 1.0) > 1e-6, task


def _first_micro_batch(inputs: dict, rows: int) -> dict:
    return {k: v[:rows] if isinstance(v, torch.Tensor) and v.ndim else v for k, v in inputs.items()}


def _on_policy_dapo_loss(inputs: dict, step_tokens: torch.Tensor) -> torch.Tensor:
    """Ratio 1 (old = new at first use): per-token loss -A, summed over the rows' counted tokens / step tokens."""
    total = 0.0
    for task in ("understand", "generate"):
        mask = inputs[f"{task}/completion_mask"].float()
        total += -(inputs[f"{task}/advantages"] * mask.sum(dim=1)).sum() / step_tokens[task]
    return total


def test_dapo_normaliser_when_a_generation_batch_spans_two_optimizer_steps(make_trainer, tmp_path):
    # steps_per_generation=2, no accumulation: the 4-pair generation batch serves two steps of 2 pairs; each step's
    # tokens weigh 1 / (that step's tokens), i.e. 2 / (the generation batch's tokens) on average.
    trainer, model = make_trainer(tmp_path, steps_per_generation=2, gradient_accumulation_steps=1)
    model.train()
    torch.manual_seed(0)
    inputs = trainer._generate_and_score_completions(_rows(trainer, pairs=4))
    assert inputs["understand/old_logps"] is not None  # stored: the batch is used after an update
    for task in ("understand", "generate"):
        inputs[f"{task}/advantages"] = torch.linspace(-1.0, 2.0, 4 * K) * (
            1.0 if task == "understand" else 0.5
        )  # no cancelling
    step = {task: inputs[f"{task}/step_tokens"] / 2 for task in ("understand", "generate")}
    micro = _first_micro_batch(inputs, 2 * K)
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); this test calls the loss directly
    loss = trainer._compute_loss(model, micro)
    assert loss.item() == pytest.approx(_on_policy_dapo_loss(micro, step).item(), rel=1e-4)


def test_dapo_token_count_is_gathered_over_ranks(make_trainer, tmp_path, monkeypatch):
    # Rank 1 of 2 where rank 0 counted 3x this rank's tokens: each token of either rank weighs 1 / (all tokens),
    # so this rank's loss is its sum / (all tokens / 2). A rank-local count would give sum / (local / 2).
    trainer, model = make_trainer(tmp_path)
    model.train()
    monkeypatch.setattr(type(trainer.accelerator), "num_processes", property(lambda self: 2))
    # Scalars (token counts) of rank 0 are 3x this rank's; other gathered tensors (rewards, lengths) are duplicated.
    monkeypatch.setattr(
        trainer.accelerator,
        "gather",
        lambda t: (
            torch.cat([t.reshape(-1, *t.shape[1:])] * 2) * torch.tensor([3, 1]) if t.ndim == 0 else torch.cat([t, t])
        ),
    )
    torch.manual_seed(0)
    inputs = trainer._generate_and_score_completions(_rows(trainer))
    local = {t: inputs[f"{t}/completion_mask"].sum().float() for t in ("understand", "generate")}
    for task in local:
        assert inputs[f"{task}/step_tokens"].item() == 4 * local[task].item()
        inputs[f"{task}/advantages"] = torch.linspace(-1.0, 2.0, 2 * K)
    monkeypatch.setattr(trainer.accelerator, "reduce", lambda t, reduction: t)
    trainer.current_gradient_accumulation_steps = 1
    loss = trainer._compute_loss(model, inputs)
    expected = _on_policy_dapo_loss(inputs, {t: 4 * n / 2 for t, n in local.items()})
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    loss.backward()  # per-token gradient: d loss / d logp = -A / (all tokens / 2) for each counted token
