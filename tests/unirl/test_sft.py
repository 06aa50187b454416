"""UniRL SFT: straight-through Gumbel decoding (janus/gumbel.py), the SFT loss and trainer (open_r1/trainer/unirl_sft.py)."""

import copy

import pytest
import torch

import janus
from data_tools.make_unirl_prompts import build_rows
from janus.backbone import JanusBackbone
from janus.gumbel import conditional_gumbel, straight_through, straight_through_pixels
from open_r1.trainer.unirl_sft import UniRLSFTConfig, UniRLSFTTrainer, load_self_rows


def test_conditional_gumbel_keeps_the_sampled_token_on_top_with_the_right_law():
    torch.manual_seed(0)
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5]]).expand(20000, 4)
    tokens = torch.full((20000,), 1)
    noise = conditional_gumbel(logits, tokens)
    assert torch.equal((logits + noise).argmax(-1), tokens)
    # Unconditioned Gumbel-max: drawing the token, then its conditional noise, gives the unconditional noise law,
    # so the perturbed maximum's mean is logsumexp(logits) + Euler's gamma (0.5772).
    sampled = torch.multinomial(logits.softmax(-1), 1).squeeze(-1)
    top = (logits + conditional_gumbel(logits, sampled)).max(-1).values
    assert abs(top.mean().item() - (logits[0].logsumexp(0).item() + 0.5772)) < 0.03


def test_straight_through_is_one_hot_forward_and_soft_backward():
    logits = torch.randn(3, 5, requires_grad=True)
    tokens = torch.tensor([0, 4, 2])
    weights = straight_through(logits, tokens, conditional_gumbel(logits, tokens), tau=0.5)
    assert torch.equal(weights, torch.nn.functional.one_hot(tokens, 5).float())
    (weights * torch.arange(5.0)).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_straight_through_pixels_equal_the_decoded_image(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_generation(["a photo of a red cat", "a photo of two dogs"])
    tokens = janus.sample_image_tokens(model, batch, cfg_weight=5.0, generator=torch.Generator().manual_seed(0)).tokens
    pixels = straight_through_pixels(model, batch, tokens, cfg_weight=5.0)
    torch.testing.assert_close(pixels, janus.decode_image_tokens(model, tokens), atol=1e-5, rtol=1e-5)


def test_gold_completion_renders_the_assistant_turn(tiny_janus):
    _, processor = tiny_janus
    ids, mask = JanusBackbone(processor).gold_completion(["A", "two clocks"])
    assert mask.sum(1).tolist() == [int(m) for m in mask.sum(1)]
    for row, m, text in zip(ids, mask, ["A", "two clocks"], strict=True):
        row = row[: int(m.sum())].tolist()
        assert row[-1] == processor.special.eos_id
        assert processor.tokenizer.decode(row[:-1]) == " " + text


def _rows_file(tmp_path, n=4):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(__import__("json").dumps(r.to_dict()) + "\n" for r in build_rows(max(n, 6), seed=0)[:n]))
    return path


def _trainer(tiny_janus_path, tmp_path, **overrides):
    backbone, model = JanusBackbone.load(tiny_janus_path, dtype=torch.float32)
    settings = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=1, learning_rate=1e-3,
        lr_scheduler_type="constant", report_to="none", save_strategy="no", use_cpu=True, seed=0,
        logging_steps=1, dataloader_num_workers=0, cfg_weight=2.0, judge_max_new_tokens=2,
    )  # fmt: skip
    args = UniRLSFTConfig(**{**settings, **overrides})
    dataset = load_self_rows(str(_rows_file(tmp_path)))
    return UniRLSFTTrainer(model=model, backbone=backbone, args=args, train_dataset=dataset), dataset


def _head_grad(trainer, dataset):
    model = trainer.model
    model.train()
    model.zero_grad()
    loss = trainer.compute_loss(model, [dataset[0], dataset[1]])
    loss.backward()
    grads = [p.grad for p in model.model.generation_head.parameters()]
    return loss, sum(0.0 if g is None else g.abs().sum().item() for g in grads)


@pytest.mark.parametrize(("end_to_end", "expect_grad"), [(False, False), (True, True)])
def test_generation_head_gradient_only_end_to_end(tiny_janus_path, tmp_path, end_to_end, expect_grad):
    trainer, dataset = _trainer(tiny_janus_path, tmp_path, end_to_end=end_to_end)
    torch.manual_seed(0)
    loss, grad = _head_grad(trainer, dataset)
    assert torch.isfinite(loss) and loss.item() > 0
    assert (grad > 0) is expect_grad
    vision_grads = [p.grad for p in trainer.model.model.vision_model.parameters()]
    assert all(g is None for g in vision_grads)  # frozen by default, yet the gradient flows *through* it


def test_image_nll_uses_only_correctly_answered_rows(tiny_janus_path, tmp_path, monkeypatch):
    trainer, dataset = _trainer(tiny_janus_path, tmp_path, image_nll=True, image_nll_weight=1.0)
    rows = [dataset[0], dataset[1]]
    monkeypatch.setattr("open_r1.trainer.unirl_sft.answer_is_correct", lambda a, g, q: False)
    torch.manual_seed(0)
    loss_none = trainer.compute_loss(trainer.model, rows)
    assert trainer._step_metrics["image_nll"][-1] == 0.0 and trainer._step_metrics["judge_accuracy"][-1] == 0.0
    monkeypatch.setattr("open_r1.trainer.unirl_sft.answer_is_correct", lambda a, g, q: True)
    torch.manual_seed(0)
    loss_all = trainer.compute_loss(trainer.model, rows)
    assert trainer._step_metrics["image_nll"][-1] > 0
    assert loss_all.item() == pytest.approx(loss_none.item() + trainer._step_metrics["image_nll"][-1], rel=1e-4)


@pytest.mark.slow  # ~30 s alone, minutes on a loaded 2-core machine
def test_sft_loss_falls_on_the_tiny_model(tiny_janus_path, tmp_path):
    trainer, _ = _trainer(tiny_janus_path, tmp_path, max_steps=5, per_device_train_batch_size=4, learning_rate=1e-2)
    before = copy.deepcopy(trainer.model.lm_head.weight.detach())
    trainer.train()
    losses = [h["answer_nll"] for h in trainer.state.log_history if "answer_nll" in h]
    assert len(losses) == 5
    assert losses[-1] < 0.6 * losses[0], losses  # measured 6.33 -> 2.84
    assert not torch.equal(before, trainer.model.lm_head.weight)
    trainer.save_model(str(tmp_path / "saved"))
    reloaded, _ = janus.load_pretrained(tmp_path / "saved", dtype=torch.float32)
    torch.testing.assert_close(reloaded.lm_head.weight, trainer.model.lm_head.weight)
