"""`ShowoBackbone` on the tiny checkpoint: the Protocol and registry, recomputed log-probs equal to the samplers'
(answers and images, at a temperature != 1), batching, own-image rows, step groups, gold answers and save/load."""

import pytest
import torch
from PIL import Image

from backbones import AnswerSampling, Backbone, ImageSampling, infer_backbone, load_backbone
from showo.backbone import ShowoBackbone, understanding_pixels
from showo.checkpoint import load_pretrained
from showo.tiny import build_tiny_checkpoint

PROMPTS = ["a red apple on a table", "two cats", "a photo of a white cup and a black dog left of a purple flower"]
QUESTIONS = ["What color is the sky?", "How many birds are there? A. one B. two", "Colour?"]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-showo") / "showo")


@pytest.fixture(scope="module")
def loaded(tiny_path):
    return load_backbone(tiny_path)


def seeded(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_protocol_registry_and_groups(tiny_path, loaded):
    backbone, model = loaded
    assert (
        isinstance(backbone, Backbone) and isinstance(backbone, ShowoBackbone) and infer_backbone(tiny_path) == "showo"
    )
    assert backbone.layout.grid == (4, 4) and backbone.image_size == 64  # num_vq_tokens 16, MAGVIT-v2 16x
    names = [n for n, _ in model.named_parameters()]
    for prefixes in backbone.module_groups.values():
        assert all(any(n.startswith(p + ".") for n in names) for p in prefixes)
    assert backbone.pad_id == backbone.vocab.pad_id != backbone.vocab.eos_id


@pytest.mark.parametrize("logprob", ["cfg", "conditional"])
def test_image_trajectory_logps_equal_the_samplers(loaded, logprob):
    backbone, model = loaded
    options = ImageSampling(cfg_weight=5.0, temperature=0.7, steps=5, logprob=logprob)
    generated = backbone.sample_images(model, PROMPTS, options, seeded(0, 1, 2))
    rollout = generated.rollout
    assert rollout.completion_ids.shape == (3, 16) and generated.pixels.shape == (3, 3, 64, 64)
    assert bool((rollout.record["unmask_step"] >= 0).all())  # Show-o's last step reveals every code
    assert int(rollout.completion_ids.max()) < backbone.vocab.codebook_size
    logps = backbone.image_logps(model, rollout, options)
    if logprob == "conditional":  # the sampler drew from the CFG mix: nothing to compare, but a real score
        assert rollout.sampling_logps is None and bool((logps < 0).all())
        return
    assert (logps - rollout.sampling_logps).abs().max().item() < 1e-5
    assert logps.requires_grad


def test_answer_logps_equal_the_samplers(loaded):
    backbone, model = loaded
    generated = backbone.sample_images(model, PROMPTS, ImageSampling(steps=3), seeded(0, 1, 2), decode=False)
    options = AnswerSampling(max_new_tokens=6, temperature=0.7)
    images = [Image.new("RGB", (48, 40), "green"), None, None]
    own = torch.tensor([False, True, False])
    rollout = backbone.sample_answers(model, QUESTIONS, images, options, generated, own, generator=seeded(3, 4, 5))
    assert rollout.completion_ids.shape == (3, 6)
    assert int(rollout.completion_ids.max()) < backbone.vocab.llm_vocab_size  # "text": Phi's vocabulary only
    logps = backbone.answer_logps(model, rollout, options)
    assert (logps - rollout.sampling_logps).abs().max().item() < 1e-5 and logps.requires_grad
    # At another temperature the scores differ: the loss divides by the sampling temperature.
    other = backbone.answer_logps(model, rollout, AnswerSampling(max_new_tokens=6, temperature=1.0))
    assert (other - logps).abs().max().item() > 1e-3


def test_answers_stop_at_eos_and_keep_their_length(tiny_path):
    backbone, model = load_backbone(tiny_path)
    with torch.no_grad():
        model.showo.lm_head.bias[backbone.vocab.eos_id] += 50.0  # EOS first, for every row
    options = AnswerSampling(max_new_tokens=4, temperature=0.7)
    calls = {"body": 0, "vq": 0}
    hooks = [model.showo.model.register_forward_hook(lambda *a: calls.__setitem__("body", calls["body"] + 1)),
             model.vq_model.encoder.register_forward_hook(lambda *a: calls.__setitem__("vq", calls["vq"] + 1))]  # fmt: skip
    try:
        rollout = backbone.sample_answers(model, QUESTIONS[:2], [None, None], options, generator=seeded(0, 1))
    finally:
        for hook in hooks:
            hook.remove()
    # Every row ended at its first token, yet the forwards are those of any answer (ZeRO-3: equal on every rank):
    # one prefill + 3 one-token steps, and one MAGVIT-v2 encode although no row has an image file.
    assert calls == {"body": 4, "vq": 1}
    assert rollout.completion_ids[:, 0].tolist() == [backbone.vocab.eos_id] * 2
    assert rollout.completion_ids[:, 1:].eq(backbone.pad_id).all() and rollout.completion_mask.sum(1).tolist() == [
        1,
        1,
    ]
    assert rollout.completion_ids.shape[1] == 4  # no early stop: every rank decodes the same steps
    logps = backbone.answer_logps(model, rollout, options)
    assert (logps - rollout.sampling_logps).abs().max().item() < 1e-5 and bool((logps[:, 1:] == 0).all())
    assert backbone.decode_answers(rollout.completion_ids) == ["", ""]


def test_full_answer_vocab_samples_the_whole_head(loaded):
    backbone, model = loaded
    full = ShowoBackbone(backbone.tokenizer, backbone.layout, answer_vocab="full")
    options = AnswerSampling(max_new_tokens=8, temperature=1.0)
    rollout = full.sample_answers(model, QUESTIONS, [None] * 3, options, generator=seeded(0, 1, 2))
    # A random tiny model puts most mass on the 8192 image codes, which the original mmu_generate can draw too.
    assert int(rollout.completion_ids.max()) >= backbone.vocab.llm_vocab_size
    logps = full.answer_logps(model, rollout, options)
    assert (logps - rollout.sampling_logps).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="answer_vocab"):
        ShowoBackbone(backbone.tokenizer, backbone.layout, answer_vocab="codes")


def test_image_batch_equals_rows_at_batch_one(loaded):
    backbone, model = loaded
    options = ImageSampling(cfg_weight=3.0, temperature=1.0, steps=4)
    batched = backbone.sample_images(model, PROMPTS, options, seeded(4, 5, 6), decode=False).rollout
    pads = (batched.record["input_ids"] == backbone.pad_id).sum(1)
    assert len(set(pads.tolist())) == 3  # left-padded prompts of different lengths
    for row, seed in enumerate((4, 5, 6)):
        single = backbone.sample_images(model, PROMPTS[row : row + 1], options, seeded(seed), decode=False).rollout
        assert torch.equal(batched.completion_ids[row], single.completion_ids[0])
        assert torch.equal(batched.record["unmask_step"][row], single.record["unmask_step"][0])


def test_answer_batch_equals_rows_at_batch_one(loaded):
    backbone, model = loaded
    options = AnswerSampling(max_new_tokens=5, temperature=0.9)
    batched = backbone.sample_answers(model, QUESTIONS, [None] * 3, options, generator=seeded(1, 2, 3))
    assert len(set(batched.record["attention_mask"].sum(1).tolist())) == 3  # left-padded questions
    for row, seed in enumerate((1, 2, 3)):
        single = backbone.sample_answers(model, QUESTIONS[row : row + 1], [None], options, generator=seeded(seed))
        assert torch.equal(batched.completion_ids[row], single.completion_ids[0])
        torch.testing.assert_close(batched.sampling_logps[row], single.sampling_logps[0], rtol=0, atol=1e-5)


def test_rows_read_their_generated_codes_or_their_file(loaded):
    backbone, model = loaded
    generated = backbone.sample_images(model, PROMPTS[:2], ImageSampling(steps=3), seeded(0, 1), decode=False)
    image = Image.new("RGB", (80, 64), "red")
    own = torch.tensor([True, False])
    rollout = backbone.sample_answers(
        model, ["Q", "Q"], [None, image], AnswerSampling(max_new_tokens=2), generated, own
    )
    offset, ids = backbone.vocab.image_offset, rollout.record["input_ids"]
    soi = backbone.vocab.special("<|soi|>")
    codes = [ids[row, (ids[row] == soi).nonzero()[0, 0] + 1 :][:16] - offset for row in range(2)]
    assert torch.equal(codes[0], generated.rollout.completion_ids[0])
    file_codes = model.vq_model.encode(understanding_pixels(image, 64)[None])[0]  # resized + centre-cropped, 4x4
    assert torch.equal(codes[1], file_codes)
    with pytest.raises(ValueError, match="no image was generated"):
        backbone.sample_answers(model, ["Q"], [None], AnswerSampling(max_new_tokens=2), None, torch.tensor([True]))


def test_step_group_trades_forwards_for_exactness(loaded):
    backbone, model = loaded
    options = ImageSampling(steps=6)
    rollout = backbone.sample_images(model, PROMPTS[:2], options, seeded(0, 1), decode=False).rollout
    calls = []
    hook = model.showo.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        exact = backbone.image_logps(model, rollout, options)
        grouped = backbone.image_logps(model, rollout, ImageSampling(steps=6, step_group=3))
    finally:
        hook.remove()
    assert len(calls) == 6 * 2 + 2 * 2  # (cond + uncond) per scored group
    assert (exact - rollout.sampling_logps).abs().max().item() < 1e-5
    assert (grouped - exact).abs().max().item() > 1e-4  # later steps scored at an earlier, more masked state
    with pytest.raises(ValueError, match="image_steps"):
        backbone.image_logps(model, rollout, ImageSampling(steps=3))


def test_gold_answers_follow_the_assistant_turn(loaded):
    backbone, model = loaded
    generated = backbone.sample_images(model, PROMPTS[:2], ImageSampling(steps=3), seeded(0, 1), decode=False)
    options = AnswerSampling(max_new_tokens=8)
    own = torch.tensor([True, True])
    gold = backbone.answer_rollout(["Q", "Q"], [None, None], ["B", "two cats"], options, generated, own)
    lengths = gold.completion_mask.sum(1)
    assert [int(gold.completion_ids[i, n - 1]) for i, n in enumerate(lengths)] == [backbone.vocab.eos_id] * 2
    assert backbone.decode_answers(gold.completion_ids) == [" B", " two cats"]
    logps = backbone.answer_logps(model, gold, options)
    mask = gold.completion_mask.bool()
    assert bool((logps[mask] < 0).all()) and bool((logps[~mask] == 0).all())
    with pytest.raises(ValueError, match="MAGVIT-v2 encoder"):
        backbone.answer_rollout(["Q"], [Image.new("RGB", (16, 16))], ["B"], options, generated, own[:1])


def test_unsupported_options_name_the_field(loaded):
    backbone, model = loaded
    with pytest.raises(ValueError, match="image_top_k=5"):
        backbone.sample_images(model, ["x"], ImageSampling(top_k=5, steps=2))
    with pytest.raises(ValueError, match="top_p=0.9"):
        backbone.sample_answers(model, ["Q"], [None], AnswerSampling(max_new_tokens=2, top_p=0.9))
    with pytest.raises(ValueError, match="understanding_system_prompt"):
        backbone.sample_answers(model, ["Q"], [None], AnswerSampling(max_new_tokens=2, system_prompt="Be brief."))


def test_gradient_checkpointing_keeps_the_answer_gradient(tiny_path):
    backbone, model = load_backbone(tiny_path)
    options = AnswerSampling(max_new_tokens=3)
    rollout = backbone.sample_answers(model, QUESTIONS[:2], [None, None], options, generator=seeded(0, 1))
    model.train()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert model.showo.model.gradient_checkpointing  # the Phi body's layers now recompute in backward
    backbone.answer_logps(model, rollout, options).sum().backward()
    assert model.showo.model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="KV cache"):  # checkpointed layers would silently drop the cache
        backbone.sample_answers(model, QUESTIONS[:1], [None], options)
    model.eval()
    again = backbone.sample_answers(model, QUESTIONS[:2], [None, None], options, generator=seeded(0, 1))
    assert torch.equal(again.completion_ids, rollout.completion_ids)


def test_save_keeps_the_run_folder_and_roundtrips(loaded, tmp_path):
    backbone, model = loaded
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text("{}\n")  # a run folder's own files survive every save
    (out / "checkpoint-2").mkdir()
    backbone.save(model, out)
    again, reloaded = ShowoBackbone.load(out)
    again.save(reloaded, out)  # saving over the folder it was loaded from (its phi/ is the tokenizer source)
    assert (out / "metrics.jsonl").read_text() == "{}\n" and (out / "checkpoint-2").is_dir()
    assert not list(out.glob(".saving.*"))
    final, _, _ = load_pretrained(out)
    assert again.layout == backbone.layout
    for (name, a), (_, b) in zip(model.state_dict().items(), final.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
