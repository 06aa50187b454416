"""`LuminaDiMOOBackbone` on the tiny checkpoint: the Protocol, the samplers against the ORIGINAL samplers' seeded
outputs (fixtures/parity.npz), batching, trajectory log-probs equal to the sampler's, and one PairGRPO step through
the unchanged trainer."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from backbones import AnswerSampling, Backbone, ImageSampling, infer_backbone, load_backbone
from lumina_dimoo.backbone import LuminaDiMOOBackbone
from lumina_dimoo.processor import DimooProcessor
from lumina_dimoo.tokens import DimooTokens, image_block
from lumina_dimoo.vq import encode_codes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "open_r1"))
from pairgrpo_helpers import tiny_args, write_pairs  # noqa: E402 (the trainer tests' helpers)

FIXTURES = Path(__file__).parent / "fixtures"
T = DimooTokens()
PROMPTS = ["a red apple on a table", "two cats", "a black and white photograph of a city street at night"]


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(FIXTURES / "parity.npz")), json.loads((FIXTURES / "parity.json").read_text())


@pytest.fixture(scope="module")
def loaded(tiny_dimoo_path):
    return load_backbone(tiny_dimoo_path)


def parity_backbone(tokenizer, grid, noise="sequence") -> LuminaDiMOOBackbone:
    """The fixture builder's settings: a 2 x 3 generated grid, the 64 x 96 image unresized, the original's noise."""
    return LuminaDiMOOBackbone(DimooProcessor(tokenizer, T, image_grid=tuple(grid)), image_size=96, text_noise=noise)


def seeded(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_protocol_registry_and_groups(tiny_dimoo_path, loaded):
    backbone, model = loaded
    assert isinstance(backbone, Backbone) and infer_backbone(tiny_dimoo_path) == "lumina_dimoo"
    assert backbone.processor.image_grid == (4, 4)  # pairuni_image_size 64 / 16
    names = [n for n, _ in model.named_parameters()]
    for prefixes in backbone.module_groups.values():
        assert all(any(n.startswith(p + ".") for n in names) for p in prefixes)
    assert any(n.startswith("vqvae.") for n in names) and backbone.pad_id == T.eos


@pytest.mark.parametrize("cfg", [4.0, 0.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_image_sampler_equals_the_original(tiny_dimoo, expected, cfg, seed):
    data, meta = expected
    backbone = parity_backbone(tiny_dimoo[1], meta["image_grid"])
    options = ImageSampling(cfg_weight=cfg, temperature=1.0, steps=meta["image_steps"])
    out = backbone.sample_images(tiny_dimoo[0], [PROMPTS[0]], options, torch.Generator().manual_seed(seed), False)
    codes = out.rollout.completion_ids[0] + T.image_offset
    assert codes.tolist() == data[f"gen_codes_cfg{cfg:g}_seed{seed}"].tolist()


@pytest.mark.parametrize("case", [(2, 8, 8, 0.0, 0), (4, 8, 4, 0.0, 0), (2, 8, 8, 1.0, 3)])
def test_text_sampler_equals_the_original(tiny_dimoo, expected, case):
    data, meta = expected
    steps, length, block, tau, seed = case
    assert list(case) in meta["text_cases"]
    backbone = parity_backbone(tiny_dimoo[1], meta["image_grid"])
    image = Image.fromarray(data["vq_image"])
    options = AnswerSampling(
        max_new_tokens=length, steps=steps, block_length=block, temperature=tau or 1.0, do_sample=tau > 0
    )
    torch.manual_seed(seed)  # the original draws from the global RNG
    rollout = backbone.sample_answers(tiny_dimoo[0], ["What is in the image?"], [image], options)
    original = data[f"text_steps{steps}_len{length}_block{block}_tau{tau:g}_seed{seed}"]
    assert rollout.record["input_ids"][0, : meta["mmu_answer_start"]].tolist() == original[:108].tolist()
    assert rollout.completion_ids[0].tolist() == original[108 : 108 + length].tolist()


def test_image_batch_equals_rows_at_batch_one(loaded):
    backbone, model = loaded
    options = ImageSampling(cfg_weight=3.0, temperature=1.0, steps=5)
    batched = backbone.sample_images(model, PROMPTS, options, seeded(4, 5, 6), decode=False).rollout
    assert len(set(batched.record["attention_mask"].sum(1).tolist())) == 3  # padded rows of different lengths
    for row, seed in enumerate((4, 5, 6)):
        single = backbone.sample_images(model, PROMPTS[row : row + 1], options, seeded(seed), decode=False).rollout
        assert torch.equal(batched.completion_ids[row], single.completion_ids[0])
        assert torch.equal(batched.record["unmask_step"][row], single.record["unmask_step"][0])
        torch.testing.assert_close(batched.sampling_logps[row], single.sampling_logps[0], rtol=0, atol=1e-5)


def test_answer_batch_equals_rows_at_batch_one(loaded):
    backbone, model = loaded
    questions = ["What is in the image?", "How many birds are there? A. one B. two", "Colour?"]
    images = [Image.new("RGB", (64, 48), "red"), None, Image.new("RGB", (32, 32), "blue")]
    options = AnswerSampling(max_new_tokens=8, steps=4, block_length=4, temperature=0.9)
    batched = backbone.sample_answers(model, questions, images, options, generator=seeded(1, 2, 3))
    for row, seed in enumerate((1, 2, 3)):
        single = backbone.sample_answers(model, questions[row : row + 1], images[row : row + 1], options,
                                         generator=seeded(seed))  # fmt: skip
        assert torch.equal(batched.completion_ids[row], single.completion_ids[0])
        assert torch.equal(batched.record["unmask_step"][row], single.record["unmask_step"][0])


@pytest.mark.parametrize("logprob", ["cfg", "conditional"])
def test_image_trajectory_logps_equal_the_samplers(loaded, logprob):
    backbone, model = loaded
    options = ImageSampling(cfg_weight=4.0, temperature=0.8, steps=6, logprob=logprob)
    rollout = backbone.sample_images(model, PROMPTS, options, seeded(0, 1, 2), decode=False).rollout
    logps = backbone.image_logps(model, rollout, options)
    if logprob == "conditional":  # the sampler drew from the CFG mix: nothing comparable, but a real score
        assert rollout.sampling_logps is None and bool((logps < 0).all())
        return
    assert (logps - rollout.sampling_logps).abs().max().item() < 1e-5
    assert logps.requires_grad


def test_answer_trajectory_logps_equal_the_samplers(loaded):
    backbone, model = loaded
    generated = backbone.sample_images(model, PROMPTS, ImageSampling(steps=3), seeded(0, 1, 2), decode=False)
    options = AnswerSampling(max_new_tokens=8, steps=2, temperature=1.0)
    images = [Image.new("RGB", (48, 48), "green"), None, None]
    own = torch.tensor([False, True, False])
    rollout = backbone.sample_answers(
        model, ["Colour?", "What is in the image?", "Hi"], images, options, generated, own
    )
    logps = backbone.answer_logps(model, rollout, options)
    assert (logps - rollout.sampling_logps).abs().max().item() < 1e-5 and logps.requires_grad
    assert bool((rollout.completion_mask.sum(1) >= 1).all())


def test_own_image_rows_read_their_generated_codes(loaded):
    backbone, model = loaded
    generated = backbone.sample_images(model, PROMPTS[:2], ImageSampling(steps=3), seeded(0, 1), decode=False)
    options = AnswerSampling(max_new_tokens=4, steps=2)
    rollout = backbone.sample_answers(model, ["Q", "Q"], [None, None], options, generated, torch.tensor([True, True]))
    for row in range(2):
        block = image_block(generated.rollout.completion_ids[row].view(4, 4), T)
        ids = rollout.record["input_ids"][row].tolist()
        assert any(ids[i : i + len(block)] == block for i in range(len(ids)))
    with pytest.raises(ValueError, match="no image was generated"):
        backbone.sample_answers(model, ["Q"], [None], options, None, torch.tensor([True]))


def test_file_images_are_encoded_unresized_within_the_budget(loaded):
    backbone, model = loaded
    image = Image.new("RGB", (64, 32), "red")
    rollout = backbone.sample_answers(model, ["Q"], [image], AnswerSampling(max_new_tokens=2, steps=1))
    pixels = torch.tensor(np.asarray(image)).permute(2, 0, 1).float()[None] / 255
    block = image_block(encode_codes(model.vqvae, pixels)[0], T)  # [2, 4] codes, no resize (64*32 <= 64**2)
    ids = rollout.record["input_ids"][0].tolist()
    assert any(ids[i : i + len(block)] == block for i in range(len(ids)))


def test_step_group_trades_forwards_for_exactness(loaded):
    backbone, model = loaded
    rollout = backbone.sample_images(model, PROMPTS[:2], ImageSampling(steps=6), seeded(0, 1), decode=False).rollout
    calls = []
    hook = model.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        exact = backbone.image_logps(model, rollout, ImageSampling(steps=6, step_group=1))
        grouped = backbone.image_logps(model, rollout, ImageSampling(steps=6, step_group=3))
    finally:
        hook.remove()
    assert len(calls) == 6 * 2 + 2 * 2  # (cond + uncond) per scored group
    assert (exact - rollout.sampling_logps).abs().max().item() < 1e-5
    assert (grouped - exact).abs().max().item() > 1e-4  # later steps scored at an earlier, more masked state


def test_gold_answers_score_a_left_to_right_trajectory(loaded):
    backbone, model = loaded
    generated = backbone.sample_images(model, PROMPTS[:2], ImageSampling(steps=3), seeded(0, 1), decode=False)
    options = AnswerSampling(max_new_tokens=8, steps=4, block_length=4)
    own = torch.tensor([True, True])
    gold = backbone.answer_rollout(["Q", "Q"], [None, None], ["B", "two"], options, generated, own)
    assert gold.record["unmask_step"][0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert gold.completion_ids[0, 1].item() == T.eos and gold.completion_mask[0].tolist() == [1, 1] + [0] * 6
    logps = backbone.answer_logps(model, gold, options)
    assert bool((logps[gold.completion_mask.bool()] < 0).all()) and bool(
        (logps[~gold.completion_mask.bool()] == 0).all()
    )
    with pytest.raises(ValueError, match="VQ encoder"):
        backbone.answer_rollout(["Q"], [Image.new("RGB", (16, 16))], ["B"], options, generated, own[:1])


def test_save_load_roundtrip_through_the_backbone(loaded, tmp_path):
    backbone, model = loaded
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "metrics.jsonl").write_text("{}\n")  # a run folder's own files survive the save
    backbone.save(model, tmp_path / "saved")
    assert (tmp_path / "saved" / "metrics.jsonl").read_text() == "{}\n"
    again, reloaded = LuminaDiMOOBackbone.load(tmp_path / "saved")
    assert again.processor.image_grid == backbone.processor.image_grid
    for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def answer_length(prompts, completions, **kwargs):
    return [len(c) / 40 for c in completions]  # dense: random tiny answers decode to strings of varied length


def mostly_red(prompts, completions, images, **kwargs):
    return (images[:, 0] > images[:, 1]).float().mean(dim=(1, 2)).tolist()


def test_pairgrpo_step_on_the_tiny_model(tiny_dimoo_path, tmp_path):
    from open_r1.dataset import load_pair_dataset
    from open_r1.trainer import PairGRPOTrainer
    from rewards import RewardFunc

    torch.manual_seed(0)
    backbone, model = load_backbone(tiny_dimoo_path)
    funcs = [RewardFunc("answer_length", "understand", answer_length), RewardFunc("red", "generate", mostly_red)]
    args = tiny_args(
        tmp_path / "run", num_generations_text=2, num_generations_image=2, image_steps=4, text_steps=2,
        cfg_weight=4.0, reward_funcs=[f.name for f in funcs], learning_rate=1e-3,
    )  # fmt: skip
    data = load_pair_dataset(write_pairs(tmp_path / "data"))
    trainer = PairGRPOTrainer(model=model, backbone=backbone, reward_funcs=funcs, args=args, train_dataset=data)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert {"lm_head.weight", "model.layers.0.self_attn.q_proj.weight"} <= moved
    assert not any(n.startswith("vqvae.") for n in moved)  # not in trainable_modules
    history = trainer.state.log_history[0]
    assert history["understand/sampling_logp_abs_diff"] < 1e-5 and history["generate/sampling_logp_abs_diff"] < 1e-5


def test_codebook_size_comes_from_the_vq_and_must_fit_the_head():
    from lumina_dimoo.backbone import tokens_from_config

    assert tokens_from_config({"embedding_size": T.vocab_size}).codebook_size == T.codebook_size
    small = tokens_from_config({"embedding_size": T.vocab_size}, codebook_size=128)
    assert small.codebook_size == 128 and small.vocab_size == T.image_offset + 128
    with pytest.raises(ValueError, match="embedding_size=126400 cannot hold the 8192 image codes"):
        tokens_from_config({"embedding_size": 126400}, codebook_size=8192)
