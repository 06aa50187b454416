"""Fast checks of the PairGRPO trainer's own wiring: logged statistics, advantage options, rank slicing, the loss it
builds from the pure pieces, bf16 autocast, and the task-batch plumbing through TRL's generation buffer."""

import logging

import pytest
import torch
from trl.trainer.utils import shuffle_sequence_dict, split_tensor_dict

import janus
import janus.backbone as janus_backbone
from backbones import Rollout
from janus.backbone import with_generated_images
from janus.forward import image_features
from open_r1.trainer.task_batch import TASKS, TaskBatch

K = 4  # tiny_args: num_generations


def _batches(lengths_per_task):
    return {
        task: TaskBatch(Rollout(torch.zeros(n, 3), torch.ones(n, 3), None)) for task, n in lengths_per_task.items()
    }


def test_logged_reward_mean_std_and_zero_std_fraction(make_trainer, tmp_path, caplog):
    trainer, _ = make_trainer(tmp_path)
    rewards = {
        "understand": torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]),  # second group constant
        "generate": torch.tensor([0.5] * 8),  # every group constant
    }
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            trainer._log_rollout_metrics(rewards, torch.ones(8), _batches({"understand": 8, "generate": 8}))
    metrics = trainer._metrics["train"]
    assert metrics["understand/reward_mean"][0] == pytest.approx(0.75)
    assert metrics["understand/reward_std"][0] == pytest.approx(rewards["understand"].std().item())  # unbiased
    assert metrics["understand/frac_reward_zero_std"][0] == pytest.approx(0.5)
    assert metrics["generate/reward_std"][0] == 0.0 and metrics["generate/frac_reward_zero_std"][0] == 1.0
    constant = [r for r in caplog.records if "reward groups are constant" in r.getMessage()]
    assert len(constant) == 1 and "generate" in constant[0].getMessage()  # once, not every step


@pytest.mark.parametrize(("scale_rewards", "expected"), [("group", [-1.0, 1.0, -1.0, 1.0]), ("none", [-1, 1, -1, 1])])
def test_scale_rewards_option_reaches_the_advantages(make_trainer, tmp_path, scale_rewards, expected):
    trainer, _ = make_trainer(tmp_path, scale_rewards=scale_rewards)
    rewards = torch.tensor([0.0, 2.0, 0.0, 2.0])
    advantages, _ = trainer.compute_pair_advantages({"understand": rewards}, torch.ones(4), torch.ones(4).bool())
    scale = 1.0 if scale_rewards == "none" else 1 / (2 / 3**0.5 + 1e-4)  # centred by 1; unbiased std 2/sqrt(3)
    torch.testing.assert_close(advantages["understand"], torch.tensor(expected, dtype=torch.float32) * scale)


def test_each_rank_keeps_its_own_rows_of_the_advantages(make_trainer, tmp_path, monkeypatch):
    trainer, _ = make_trainer(tmp_path)
    rows = _pair_rows(trainer)
    local = {"understand": torch.tensor([0.0, 1.0, 2.0, 3.0] * 2), "generate": torch.arange(8.0)}
    # Pretend to be rank 1 of 2: rank 0's rows (other rewards) come first in the gathered tensor.
    monkeypatch.setattr(type(trainer.accelerator), "process_index", property(lambda self: 1))
    monkeypatch.setattr(trainer.accelerator, "gather", lambda t: torch.cat([torch.flip(t, dims=[0]) * 7, t]))
    advantages, weights, global_rewards, _ = trainer._rank_advantages(local, rows)
    assert global_rewards["understand"].shape == (16,)
    expected, _ = trainer.compute_pair_advantages(local, rows.similarity, rows.is_aligned)
    for task in local:
        torch.testing.assert_close(advantages[task], expected[task])
    assert weights.shape == (8,)


def _pair_rows(trainer):
    from open_r1.trainer.rollout import pair_rows

    return pair_rows(_rows(trainer), trainer.backbone.tokenizer, "{question}", None)


def _rows(trainer):
    return [dict(trainer.train_dataset[i]) for i in range(2) for _ in range(K)]  # what TRL's RepeatSampler yields


def test_loss_is_the_weighted_sum_of_masked_task_losses(make_trainer, tmp_path):
    trainer, model = make_trainer(tmp_path, generation_loss_weight=0.5)
    model.train()
    torch.manual_seed(0)
    inputs = trainer._generate_and_score_completions(_rows(trainer))
    und_mask = inputs["understand/completion_mask"]
    und_mask[:, 1:] = 0  # as if every answer ended after one token: the rest is padding the loss must skip
    und_mask[1, 1:] = 1  # ... except row 1
    advantages = {"understand": torch.linspace(-1.0, 2.0, 8), "generate": torch.linspace(1.0, -3.0, 8)}
    expected = 0.0
    for task, weight in (("understand", 1.0), ("generate", 0.5)):
        mask = inputs[f"{task}/completion_mask"].float()
        inputs[f"{task}/advantages"] = advantages[task]
        inputs[f"{task}/step_tokens"] = mask.sum()
        # On-policy (no stored old log-probs): ratio 1, per-token loss -A; "dapo": sum over the step's tokens.
        expected += weight * -(advantages[task] * mask.sum(dim=1)).sum() / mask.sum()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); this test calls the loss directly
    loss = trainer._compute_loss(model, inputs)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bf16_without_deepspeed_runs_rollout_and_loss_under_autocast(make_trainer, tmp_path, monkeypatch):
    trainer, model = make_trainer(tmp_path, bf16=True, use_cpu=True)
    seen = {}

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            seen[name] = torch.is_autocast_enabled("cpu")
            return fn(*args, **kwargs)

        monkeypatch.setattr(janus_backbone, name, wrapped)

    for name in ("sample_answer_tokens", "sample_image_tokens", "answer_token_logps", "image_token_logps"):
        spy(name, getattr(janus_backbone, name))
    model.train()
    inputs = trainer._generate_and_score_completions(_rows(trainer))
    trainer.current_gradient_accumulation_steps = 1
    trainer._compute_loss(model, inputs)
    assert seen == dict.fromkeys(seen, True) and len(seen) == 4


def test_task_batches_survive_trls_shuffle_and_split():
    n = 6
    rollout = Rollout(
        completion_ids=torch.arange(n).unsqueeze(1) * 10,
        completion_mask=torch.ones(n, 1),
        sampling_logps=None,
        record={"input_ids": torch.arange(n).unsqueeze(1)},
    )
    batch = TaskBatch(rollout, advantages=torch.arange(n, dtype=torch.float32), step_tokens=torch.tensor(6.0))
    flat = shuffle_sequence_dict(batch.flatten("understand"))
    parts = [TaskBatch.from_flat("understand", part) for part in split_tensor_dict(flat, 2)]
    for part in parts:
        assert part.old_logps is None and part.step_tokens.item() == 6.0  # scalars are kept whole
        ids, record = part.rollout.completion_ids, part.rollout.record
        torch.testing.assert_close(ids[:, 0], record["input_ids"][:, 0] * 10)  # rows aligned
        torch.testing.assert_close(part.advantages, record["input_ids"][:, 0].float())
        assert part.rollout.sampling_logps is None
    assert sorted(torch.cat([p.advantages for p in parts]).tolist()) == list(range(n))
    rows = batch.rows(slice(1, 3))
    assert rows.rollout.completion_ids[:, 0].tolist() == [10, 20]
    assert rows.advantages.tolist() == [1.0, 2.0] and rows.step_tokens.item() == 6.0  # extras sliced, scalars kept


def test_rows_flagged_own_image_see_the_generated_image():
    pixels = torch.zeros(3, 3, 4, 4)
    generated = torch.stack([torch.full((3, 8, 8), float(i + 1)) for i in range(3)])
    out = with_generated_images(pixels, generated, torch.tensor([False, True, False]), lambda x: x[..., ::2, ::2])
    assert out[1].eq(2.0).all() and out[0].eq(0).all() and out[2].eq(0).all()
    assert with_generated_images(pixels, None, torch.zeros(3).bool(), lambda x: x) is pixels
    with pytest.raises(ValueError, match="generated"):
        with_generated_images(pixels, None, torch.tensor([True, False, False]), lambda x: x)


def test_images_are_generated_before_answers():
    assert TASKS == ("generate", "understand")


def test_reused_image_features_give_the_recomputed_logps(tiny_janus):
    model, processor = tiny_janus
    from PIL import Image

    images = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    batch = processor.encode_understanding(["What colour?", "Which colour is it?"], images)
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    with torch.no_grad():
        recomputed = janus.answer_token_logps(model, batch, ids, mask)
        reused = janus.answer_token_logps(model, batch, ids, mask, features=image_features(model, batch.pixel_values))
        other = janus.answer_token_logps(model, batch, ids, mask, features=image_features(model, -batch.pixel_values))
    torch.testing.assert_close(reused, recomputed)
    assert not torch.allclose(other, recomputed)  # the features are really used


def test_features_are_reused_only_while_the_vision_side_is_frozen(make_trainer, tmp_path):
    for sub, groups, reused in (("a", ["language_model"], True), ("b", ["language_model", "aligner"], False)):
        trainer, _ = make_trainer(tmp_path / sub, trainable_modules=groups)
        inputs = trainer._generate_and_score_completions(_rows(trainer))
        assert ("understand/record/features" in inputs) == reused
