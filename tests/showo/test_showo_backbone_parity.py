"""`ShowoBackbone` itself against the ORIGINAL Show-o: `sample_images` reproduces `Showo.t2i_generate`'s seeded codes
and `sample_answers` (answer_vocab "full", as `mmu_generate` reads the whole head) its answers, at batch 1 on the
tiny checkpoint the fixtures were built on (tests/showo/fixtures, see test_showo_parity.py)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from backbones import AnswerSampling, GeneratedImages, ImageSampling, Rollout
from showo.backbone import ShowoBackbone, ShowoLayout
from showo.tiny import build_tiny_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"
DATA = dict(np.load(FIXTURES / "parity.npz"))
META = json.loads((FIXTURES / "parity.json").read_text())


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The backbone at the fixture's t2i text width (the original's max_seq_length) and with the full answer head."""
    backbone, model = ShowoBackbone.load(build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-showo"), seed=0))
    layout = ShowoLayout(backbone.vocab, backbone.layout.grid, META["max_seq_length"])
    return ShowoBackbone(backbone.tokenizer, layout, answer_vocab="full"), model


@pytest.mark.parametrize("case", META["gen_cases"], ids=lambda c: "steps{}_cfg{:g}_tau{:g}_seed{}".format(*c))
def test_sample_images_equals_t2i_generate(loaded, case):
    backbone, model = loaded
    steps, cfg, tau, seed = case
    record = backbone.generation_record([META["gen_prompt"]], torch.device("cpu"))
    assert record["input_ids"].tolist() == DATA["gen_ids"].tolist()
    assert record["uncond_input_ids"].tolist() == DATA["gen_uncond_ids"].tolist()
    options = ImageSampling(cfg_weight=cfg, temperature=tau, steps=steps)
    generated = backbone.sample_images(model, [META["gen_prompt"]], options, torch.Generator().manual_seed(seed))
    assert (
        generated.rollout.completion_ids[0].tolist()
        == DATA[f"gen_steps{steps}_cfg{cfg:g}_tau{tau:g}_seed{seed}"].tolist()
    )


def fixture_image(backbone: ShowoBackbone) -> GeneratedImages:
    """The fixture's MAGVIT-v2 codes as an own-image rollout: the answers read exactly the original's image tokens."""
    codes = torch.from_numpy(DATA["vq_codes"])  # [1, I]
    return GeneratedImages(Rollout(codes, torch.ones_like(codes), None), None)


@pytest.mark.parametrize("case", META["answer_cases"], ids=lambda c: "q{}_topk{}_tau{:g}_seed{}".format(*c))
def test_sample_answers_equals_mmu_generate(loaded, case):
    backbone, model = loaded
    question, top_k, tau, seed, length = case
    options = AnswerSampling(max_new_tokens=length, temperature=tau, top_k=top_k, do_sample=top_k != 1)
    rollout = backbone.sample_answers(
        model, [META["mmu_questions"][question]], [None], options, fixture_image(backbone), torch.tensor([True]),
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    prompt = DATA[f"mmu{question}_ids"][0]
    assert rollout.record["input_ids"][0].tolist() == prompt.tolist()
    assert rollout.completion_ids[0].tolist() == DATA[f"answer_q{question}_topk{top_k}_tau{tau:g}_seed{seed}"].tolist()


def test_a_padded_image_batch_with_row_generators_keeps_row_0(loaded):
    """Batched: the fixture's prompt next to a longer (truncated) one, one generator per row."""
    backbone, model = loaded
    steps, cfg, tau, seed = META["gen_cases"][1]
    options = ImageSampling(cfg_weight=cfg, temperature=tau, steps=steps)
    prompts = [META["gen_prompt"], META["t2i_prompts"][0]]
    generators = [torch.Generator().manual_seed(seed), torch.Generator().manual_seed(99)]
    codes = backbone.sample_images(model, prompts, options, generators, decode=False).rollout.completion_ids
    assert codes[0].tolist() == DATA[f"gen_steps{steps}_cfg{cfg:g}_tau{tau:g}_seed{seed}"].tolist()


def test_the_text_answer_vocab_is_what_departs_from_the_original(loaded):
    """On random weights the original's greedy q1 answer is mostly image codes and [PAD] (it reads the whole head);
    "text" (the default) can emit none of them."""
    backbone, model = loaded
    expected = DATA["answer_q1_topk1_tau1_seed0"].tolist()
    assert backbone.vocab.pad_id in expected and min(expected) >= backbone.vocab.llm_vocab_size
    text = ShowoBackbone(backbone.tokenizer, backbone.layout, answer_vocab="text")
    options = AnswerSampling(max_new_tokens=len(expected), do_sample=False)
    args = ([META["mmu_questions"][1]], [None], options, fixture_image(backbone), torch.tensor([True]))
    answer = text.sample_answers(model, *args).completion_ids[0].tolist()
    assert answer != expected and max(answer) < backbone.vocab.llm_vocab_size
