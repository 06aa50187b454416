"""One PairGRPO step on the tiny Janus checkpoint: what trains, what is logged, what is saved, how pairs weigh in."""

import json

import pytest
import torch

import janus
from janus.backbone import JanusBackbone
from open_r1.trainer import freeze_modules

TRAINABLE = ("model.language_model.", "lm_head.")


def _snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("gradient_checkpointing", [False, True])
def test_one_step_trains_only_the_language_model(make_trainer, tmp_path, gradient_checkpointing):
    trainer, model = make_trainer(tmp_path, gradient_checkpointing=gradient_checkpointing)
    before = _snapshot(model)
    trainer.train()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    trainable = {name for name, _ in model.named_parameters() if name.startswith(TRAINABLE)}
    assert changed, "no parameter changed: the step trained nothing"
    assert changed <= trainable, f"frozen parameters changed: {sorted(changed - trainable)[:5]}"
    # Both branches reach the LM: the text head (answers) and the LM body (images and answers) moved.
    assert "lm_head.weight" in changed and any(n.startswith("model.language_model.layers.") for n in changed)
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith(TRAINABLE))


def test_step_zero_sampler_matches_recomputed_kl_zero_and_metrics(make_trainer, tmp_path):
    trainer, _ = make_trainer(tmp_path, beta=0.04, log_images_steps=1)
    trainer.train()
    logs = trainer.state.log_history[0]
    for task in ("understand", "generate"):
        # The reference is a separate copy: KL is computed, not assumed, and is 0 before the first update.
        assert logs[f"{task}/kl"] == pytest.approx(0.0, abs=1e-6)
        # The sampler's log-probs equal the recomputed ones: old/new see exactly the rollout's inputs (a loss that
        # scored different inputs, e.g. no image or no CFG, shows a gap here).
        assert logs[f"{task}/sampling_logp_abs_diff"] < 1e-4
        for key in ("reward_mean", "reward_std", "frac_reward_zero_std", "clip_ratio", "loss"):
            assert f"{task}/{key}" in logs
    for name in ("vowel_share", "demo_color"):
        assert f"rewards/{name}/mean" in logs and f"rewards/{name}/std" in logs
    assert logs["pair_weight/mean"] == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)  # 2 aligned, 2 retrieved (s=0.25)
    assert {"grad_norm", "kl", "understand/completion_length_mean"} <= logs.keys()
    assert (tmp_path / "samples" / "step_000000.png").is_file()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["understand/kl"] == pytest.approx(0.0, abs=1e-6)


def _rollout_rows(trainer, pair_type, similarity):
    rows = []
    for i in range(2):
        row = dict(trainer.train_dataset[i], pair_type=pair_type, similarity=similarity)
        rows += [row] * trainer.num_generations  # what TRL's RepeatSampler yields
    return rows


def _grad_norm(trainer, model, inputs):
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); this test calls the loss directly
    model.zero_grad()
    trainer._compute_loss(model, inputs).backward()
    return torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters() if p.grad is not None))


def test_pair_weight_scales_advantages_and_gradient(make_trainer, tmp_path):
    trainer, model = make_trainer(tmp_path)
    model.train()
    results = {}
    for pair_type, similarity in (("aligned", 1.0), ("retrieved", 0.25)):
        torch.manual_seed(0)  # same rollouts and rewards for both: only the pair weight differs
        inputs = trainer._generate_and_score_completions(_rollout_rows(trainer, pair_type, similarity))
        results[pair_type] = (inputs, _grad_norm(trainer, model, inputs))
    aligned, retrieved = results["aligned"], results["retrieved"]
    assert aligned[0]["generate/advantages"].abs().sum() > 0
    for key in ("understand/advantages", "generate/advantages"):
        torch.testing.assert_close(retrieved[0][key], 0.5 * aligned[0][key])  # sqrt(0.25) = 0.5
    torch.testing.assert_close(retrieved[1], 0.5 * aligned[1], rtol=1e-4, atol=1e-8)


def test_pair_weighting_none_ignores_similarity(make_trainer, tmp_path):
    trainer, model = make_trainer(tmp_path, pair_weighting="none")
    model.train()
    torch.manual_seed(0)
    inputs = trainer._generate_and_score_completions(_rollout_rows(trainer, "retrieved", 0.25))
    assert torch.all(inputs["pair_weight"] == 1.0)


def test_save_loads_with_janus(make_trainer, tmp_path):
    trainer, model = make_trainer(tmp_path)
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    loaded, processor = janus.load_pretrained(tmp_path / "final")
    for (name, p), (_, q) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)
    assert processor.num_image_tokens == trainer.backbone.processor.num_image_tokens


def test_resume_restores_step_optimizer_and_scheduler(make_trainer, tmp_path):
    trainer, _ = make_trainer(tmp_path, max_steps=2, save_strategy="steps", save_steps=1, lr_scheduler_type="linear")
    trainer.train()
    checkpoint = tmp_path / "checkpoint-1"
    assert {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"} <= {
        p.name for p in checkpoint.iterdir()
    }
    resumed, _ = make_trainer(tmp_path / "resumed", max_steps=2, lr_scheduler_type="linear")
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 2
    assert [h["step"] for h in resumed.state.log_history if "loss" in h] == [1, 2]  # step 1 restored, 2 trained
    assert resumed.lr_scheduler.state_dict()["last_epoch"] == trainer.lr_scheduler.state_dict()["last_epoch"]
    assert float(resumed.optimizer.state_dict()["state"][0]["step"]) == 2  # Adam state restored (1) + 1 step


def test_freeze_modules_rejects_groups_matching_nothing(tiny_janus):
    model, _ = tiny_janus
    with pytest.raises(ValueError, match="matched no parameter"):
        freeze_modules(torch.nn.Linear(2, 2), ["language_model"], JanusBackbone)
    state = {n: p.requires_grad for n, p in model.named_parameters()}
    try:
        trainable, frozen = freeze_modules(model, ["generation_head"], JanusBackbone)
        assert trainable == sum(
            p.numel() for n, p in model.named_parameters() if n.startswith("model.generation_head.")
        )
        assert frozen > 0
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(state[n])


def test_text_head_group_trains_the_text_head_and_not_the_language_model_body(tiny_janus):
    # Decoupled tasks: understanding (text head) and generation (generation head) share no trained parameter when
    # the LM body is frozen.
    model, _ = tiny_janus
    state = {n: p.requires_grad for n, p in model.named_parameters()}
    try:
        freeze_modules(model, ["text_head", "generation_head"], JanusBackbone)
        trained = {n for n, p in model.named_parameters() if p.requires_grad}
        assert "lm_head.weight" in trained and any(n.startswith("model.generation_head.") for n in trained)
        assert not any(n.startswith("model.language_model.") for n in trained)
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(state[n])


def test_too_few_pairs_for_one_generation_batch_is_an_error(make_trainer, tmp_path):
    with pytest.raises(ValueError, match="train_dataset has 4 pairs but one generation batch needs 8"):
        make_trainer(tmp_path, per_device_train_batch_size=8)


def test_off_policy_reuse_uses_old_logps(make_trainer, tmp_path):
    # One generation batch (4 pairs) serves 2 optimizer steps, so old log-probs are stored (recomputed before any
    # update: ratio 1 at the first use) and the second step's ratio must move away from 1.
    trainer, _ = make_trainer(tmp_path, max_steps=2, steps_per_generation=2, image_logprob="conditional")
    trainer.train()
    first, second = [h for h in trainer.state.log_history if "generate/ratio_mean" in h]
    assert first["understand/ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    assert first["generate/ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    assert abs(second["generate/ratio_mean"] - 1.0) > 1e-6
    assert abs(second["understand/ratio_mean"] - 1.0) > 1e-6
    assert "generate/sampling_logp_abs_diff" not in first  # sampler log-probs are CFG-mixed, not comparable
