"""LuminaDiMOOBackbone: the original samplers' tokens at batch 1, rescored log-probs equal the sampler's (ratio 1),
batched rows equal their batch-1 runs, and a PairGRPO step on the tiny model through the unchanged trainer."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backbones import AnswerSampling, Backbone, ImageSampling, infer_backbone
from lumina_dimoo.backbone import LuminaDiMOOBackbone
from lumina_dimoo.processor import DimooProcessor

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "open_r1"))


@pytest.fixture(scope="module")
def backbone(tiny_dimoo_path):
    return LuminaDiMOOBackbone.load(tiny_dimoo_path)


def test_protocol_and_registry(backbone, tiny_dimoo_path):
    assert isinstance(backbone[0], Backbone)
    assert infer_backbone(tiny_dimoo_path) == "lumina_dimoo"
    assert backbone[0].processor.image_grid == (4, 4)


def test_image_sampler_reproduces_the_original_at_batch_one(tiny_dimoo, tiny_dimoo_path):
    """Same prompt, grid, steps, CFG and seed as fixtures/build_parity.py: the original's codes, bitwise."""
    data = dict(np.load(FIXTURES / "parity.npz"))
    bb, model = LuminaDiMOOBackbone.load(tiny_dimoo_path)
    bb.processor = DimooProcessor(bb.tokenizer, bb.tokens, image_grid=(2, 3))
    for cfg in (4.0, 0.0):
        for seed in (0, 1, 2):
            options = ImageSampling(cfg_weight=cfg, temperature=1.0, steps=4)
            out = bb.sample_images(
                model, ["a red apple on a table"], options, torch.Generator().manual_seed(seed), False
            )
            expected = data[f"gen_codes_cfg{cfg:g}_seed{seed}"] - bb.tokens.image_offset
            assert out.rollout.completion_ids[0].tolist() == expected.tolist(), (cfg, seed)


@pytest.mark.parametrize(("steps", "length", "block", "tau", "seed"), [(2, 8, 8, 0.0, 0), (4, 8, 4, 0.0, 0),
                                                                        (2, 8, 8, 1.0, 3)])  # fmt: skip
def test_text_sampler_reproduces_the_original_at_batch_one(tiny_dimoo_path, steps, length, block, tau, seed):
    data = dict(np.load(FIXTURES / "parity.npz"))
    bb, model = LuminaDiMOOBackbone.load(tiny_dimoo_path)
    bb.text_noise = "sequence"  # the original's noise layout (global RNG over every position)
    ids = torch.from_numpy(data["mmu_ids"])
    start = int(np.flatnonzero(data["mmu_ids"] == bb.tokens.answer_start)[-1]) + 1
    bb.processor.encode_understanding = lambda *args, **kwargs: _rows(ids, start, length, bb)
    options = AnswerSampling(max_new_tokens=length, steps=steps, block_length=block, temperature=max(tau, 1e-6),
                             do_sample=tau > 0)  # fmt: skip
    torch.manual_seed(seed)
    out = bb.sample_answers(model, ["What is in the image?"], [None], options)
    expected = data[f"text_steps{steps}_len{length}_block{block}_tau{tau:g}_seed{seed}"][start : start + length]
    assert out.completion_ids[0].tolist() == expected.tolist()


def _rows(ids, start, length, bb):
    """The fixture's exact prompt (its image codes included) with `length` answer masks."""
    from lumina_dimoo.processor import pad_rows

    row = ids[:start].tolist() + [bb.tokens.mask] * length + [bb.tokens.answer_end]
    return pad_rows([row], [start], bb.tokens.eos)


def test_rescored_logps_equal_the_sampler_and_batch_equals_batch_one(backbone):
    bb, model = backbone
    prompts = ["a red apple", "two blue cats sitting on a yellow sofa"]
    options = ImageSampling(cfg_weight=4.0, steps=4)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    images = bb.sample_images(model, prompts, options, gens, decode=False)
    assert images.rollout.record["input_ids"].shape[0] == 2  # rows of different prompt lengths, padded
    torch.testing.assert_close(bb.image_logps(model, images.rollout, options), images.rollout.sampling_logps)
    for i in range(2):
        alone = bb.sample_images(model, prompts[i : i + 1], options, [torch.Generator().manual_seed(i)], False)
        assert torch.equal(alone.rollout.completion_ids[0], images.rollout.completion_ids[i])
    answers_opt = AnswerSampling(max_new_tokens=8, steps=2)
    own = torch.tensor([True, False])
    answers = bb.sample_answers(model, ["What is it?", "How many?"], [None, None], answers_opt, images, own)
    logps = bb.answer_logps(model, answers, answers_opt)
    torch.testing.assert_close(logps, answers.sampling_logps)
    assert (answers.record["unmask_step"] >= 0).all() and answers.record["unmask_step"].max() == 1
    # The own-image row's prompt holds its generated codes (plus row breaks), the other row none.
    first = answers.record["input_ids"][0]
    codes = images.rollout.completion_ids[0] + bb.tokens.image_offset
    assert torch.isin(codes, first).all() and not bb.tokens.is_image_code(answers.record["input_ids"][1]).any()


def test_step_group_scores_in_fewer_forwards(backbone):
    bb, model = backbone
    options = ImageSampling(cfg_weight=4.0, steps=4)
    images = bb.sample_images(model, ["a red apple"], options, torch.Generator().manual_seed(0), decode=False)
    calls = []
    handle = model.model.register_forward_hook(lambda *args: calls.append(1))
    grouped = bb.image_logps(model, images.rollout, ImageSampling(cfg_weight=4.0, steps=4, step_group=2))
    handle.remove()
    assert len(calls) == 2 * 2  # ceil(4 / 2) groups x (cond + uncond)
    assert not torch.allclose(grouped, images.rollout.sampling_logps)  # later steps scored at an earlier state


def test_pairgrpo_step_on_tiny_lumina(tiny_dimoo_path, tmp_path):
    path = tiny_dimoo_path
    from pairgrpo_helpers import learnable_rewards, tiny_args, write_pairs

    from open_r1.dataset import load_pair_dataset
    from open_r1.trainer import PairGRPOTrainer

    bb, model = LuminaDiMOOBackbone.load(path)
    args = tiny_args(tmp_path / "run", backbone="lumina_dimoo", num_generations_text=2, num_generations_image=2,
                     image_steps=3, text_steps=2, cfg_weight=4.0, trainable_modules=["language_model"])  # fmt: skip
    funcs = learnable_rewards()
    trainer = PairGRPOTrainer(model=model, backbone=bb, reward_funcs=funcs, args=args,
                              train_dataset=load_pair_dataset(write_pairs(tmp_path / "data")))  # fmt: skip
    before = model.lm_head.weight.detach().clone()
    trainer.train()
    history = trainer.state.log_history[0]
    assert history["understand/sampling_logp_abs_diff"] < 1e-5 and history["generate/sampling_logp_abs_diff"] < 1e-5
    assert not torch.equal(before, model.lm_head.weight)
    trainer.save_model(str(tmp_path / "final"))
    reloaded = LuminaDiMOOBackbone.load(tmp_path / "final")[1]
    torch.testing.assert_close(reloaded.lm_head.weight, model.lm_head.weight)


@pytest.mark.parametrize("recipe", ["lumina_dimoo", "lumina_dimoo_tiny_cpu"])
def test_recipes_parse(tmp_path, recipe):
    from trl import ModelConfig, TrlParser

    from open_r1.configs import PairGRPOConfig, PairScriptArguments

    parser = TrlParser((PairScriptArguments, PairGRPOConfig, ModelConfig))
    argv = ["--config", f"configs/recipes/{recipe}.yaml", "--output_dir", str(tmp_path), "--pair_data_path", "x"]
    _, args, _ = parser.parse_args_and_config([*argv, "--bf16", "false"])
    assert args.backbone == "lumina_dimoo" and args.num_generations_text == args.num_generations_image == 2
    image, answer = args.image_sampling(), args.answer_sampling()
    assert (image.steps, answer.steps) == ((35, 2) if recipe == "lumina_dimoo" else (4, 2))
    assert image.cfg_weight == 4.0 and image.logprob == "cfg"
