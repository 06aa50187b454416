"""The port against the ORIGINAL Show-o code: sequences, omni-masked logits, MAGVIT-v2 codes and pixels, seeded
image codes and answers on the tiny checkpoint.

The expected values were produced by `fixtures/build_parity.py` running showlab/Show-o itself (its own venv:
transformers 4.41.1, diffusers 0.30.1) on the checkpoint `showo.tiny` builds with seed 0; see parity.json. The
original runs understanding and sampling at batch 1; here padded batches must give each row those values.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from backbones.maskgit_sampler import MaskGitOptions
from showo.checkpoint import load_pretrained
from showo.magvit import MagvitV2
from showo.sampling import generate_answer_tokens, generate_image_tokens
from showo.tiny import build_tiny_checkpoint, random_state_dict
from showo.tokens import mmu_attention_mask, mmu_ids, omni_attention_mask, position_ids, t2i_ids

FIXTURES = Path(__file__).parent / "fixtures"
DATA = dict(np.load(FIXTURES / "parity.npz"))
META = json.loads((FIXTURES / "parity.json").read_text())
LOGITS_ATOL = 1e-5  # fp32; measured max |diff| is reported by the assertion message


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-showo"), seed=0)


@pytest.fixture(scope="module")
def tiny(tiny_path):
    return load_pretrained(tiny_path)


def test_the_fixture_was_built_on_this_tiny_checkpoint(tiny_path):
    for name, digest in META["checkpoint_sha256"].items():
        assert hashlib.sha256((tiny_path / name).read_bytes()).hexdigest() == digest, (
            f"{name} of the tiny checkpoint changed: rebuild the fixtures with tests/showo/fixtures/build_parity.py"
        )


def text_ids(tokenizer, texts):
    return [tokenizer(t)["input_ids"] for t in texts]


def assert_logits_match(logits: torch.Tensor, name: str, row: int = 0) -> None:
    """Our logits [L, V] against the original's stored columns, argmax and logsumexp of `name` (row `row`)."""
    columns = torch.from_numpy(DATA["logit_columns"])
    expected = torch.from_numpy(DATA[f"{name}_logits"][row])
    diff = (logits[:, columns] - expected).abs().max().item()
    assert diff <= LOGITS_ATOL, f"{name}[{row}]: max |diff| {diff:.3g} vs the original"
    torch.testing.assert_close(logits.logsumexp(-1), torch.from_numpy(DATA[f"{name}_logsumexp"][row]), rtol=0,
                               atol=LOGITS_ATOL)  # fmt: skip
    assert logits.argmax(-1).tolist() == DATA[f"{name}_argmax"][row].tolist()


def test_t2i_sequences_equal_the_original(tiny):
    _, tokenizer, vocab = tiny
    image = torch.from_numpy(DATA["t2i_ids"][:, -(1 + 16) : -1])
    ids = t2i_ids(vocab, text_ids(tokenizer, META["t2i_prompts"]), META["max_seq_length"], image)
    assert ids.tolist() == DATA["t2i_ids"].tolist()


def test_omni_masked_logits_of_a_padded_batch_equal_the_original(tiny):
    model, _, vocab = tiny
    ids = torch.from_numpy(DATA["t2i_ids"])  # [4, L]: truncated, two padded, the null prompt
    with torch.no_grad():
        logits = model(ids, attention_mask=omni_attention_mask(ids, vocab)).logits
    for row in range(len(ids)):
        assert_logits_match(logits[row], "t2i", row)


def test_padded_mmu_batch_equals_the_original_at_batch_1(tiny):
    model, tokenizer, vocab = tiny
    image = torch.from_numpy(DATA["vq_codes"]) + vocab.image_offset
    questions = [tokenizer(f"USER: \n{q} ASSISTANT:")["input_ids"] for q in META["mmu_questions"]]
    ids = mmu_ids(vocab, image.expand(len(questions), -1), questions)  # left-padded [2, L]
    for i in range(len(questions)):
        assert ids[i, -DATA[f"mmu{i}_ids"].shape[1] :].tolist() == DATA[f"mmu{i}_ids"][0].tolist()
    kwargs = {"attention_mask": mmu_attention_mask(ids, vocab), "position_ids": position_ids(ids, vocab)}
    with torch.no_grad():
        logits = model(ids, **kwargs).logits
    for i in range(len(questions)):
        assert_logits_match(logits[i, -DATA[f"mmu{i}_ids"].shape[1] :], f"mmu{i}")


def check_vq(vq: MagvitV2, name: str) -> None:
    with torch.no_grad():
        codes = vq.encode(torch.from_numpy(DATA[f"{name}_input"]))
        pixels = vq.decode(torch.from_numpy(DATA[f"{name}_decode_codes"]))
    assert codes.tolist() == DATA[f"{name}_codes"].tolist()
    expected = torch.from_numpy(DATA[f"{name}_decoded"])
    diff = (pixels - expected).abs().max().item()
    assert diff <= 1e-5 * max(1.0, expected.abs().max().item()), f"{name}: decoded max |diff| {diff:.3g}"


def test_magvit_codes_and_pixels_equal_the_original(tiny):
    check_vq(tiny[0].vq_model, "vq")


@pytest.mark.slow  # ~15 s on 2 shared CPU cores: 95M random parameters
def test_released_size_magvit_equals_the_original():
    """The hard-coded showlab/magvitv2 sizes (95M parameters) with seeded random weights, at 32 x 32 pixels."""
    vq = MagvitV2()
    vq.load_state_dict(random_state_dict(vq, META["full_vq"]["seed"]))
    check_vq(vq.eval(), "vq_full")


@pytest.mark.parametrize("case", META["gen_cases"], ids=lambda c: "steps{}_cfg{:g}_tau{:g}_seed{}".format(*c))
def test_seeded_image_codes_equal_the_original(tiny, case):
    model, tokenizer, vocab = tiny
    steps, cfg, tau, seed = case
    masks = torch.full((1, 16), vocab.mask_id)
    cond = t2i_ids(vocab, text_ids(tokenizer, [META["gen_prompt"]]), META["max_seq_length"], masks)
    uncond = t2i_ids(vocab, [[]], META["max_seq_length"], masks)
    assert cond.tolist() == DATA["gen_ids"].tolist() and uncond.tolist() == DATA["gen_uncond_ids"].tolist()
    options = MaskGitOptions(steps, "showo", cfg_weight=cfg, temperature=tau)
    sample = generate_image_tokens(model, vocab, cond, uncond, options, torch.Generator().manual_seed(seed))
    assert sample.tokens[0].tolist() == DATA[f"gen_steps{steps}_cfg{cfg:g}_tau{tau:g}_seed{seed}"].tolist()
    assert sorted(set(sample.reveal_step[0].tolist())) == list(range(steps))


def test_batched_image_codes_with_row_generators_equal_the_original(tiny):
    """A padded batch (the fixture's prompt + a longer one) with one generator per row: row 0 keeps its codes."""
    model, tokenizer, vocab = tiny
    steps, cfg, tau, seed = META["gen_cases"][0]
    masks = torch.full((2, 16), vocab.mask_id)
    prompts = text_ids(tokenizer, [META["gen_prompt"], META["t2i_prompts"][0]])
    cond, uncond = t2i_ids(vocab, prompts, 16, masks), t2i_ids(vocab, [[], []], 16, masks)
    generators = [torch.Generator().manual_seed(seed), torch.Generator().manual_seed(99)]
    sample = generate_image_tokens(model, vocab, cond, uncond, MaskGitOptions(steps, "showo", cfg, tau), generators)
    assert sample.tokens[0].tolist() == DATA[f"gen_steps{steps}_cfg{cfg:g}_tau{tau:g}_seed{seed}"].tolist()


def mmu_prompt(tokenizer, vocab, questions):
    image = torch.from_numpy(DATA["vq_codes"]) + vocab.image_offset
    ids = [tokenizer(f"USER: \n{q} ASSISTANT:")["input_ids"] for q in questions]
    return mmu_ids(vocab, image.expand(len(ids), -1), ids)


@pytest.mark.parametrize("case", META["answer_cases"], ids=lambda c: "q{}_topk{}_tau{:g}_seed{}".format(*c))
def test_seeded_answers_equal_the_original(tiny, case):
    model, tokenizer, vocab = tiny
    question, top_k, tau, seed, length = case
    torch.manual_seed(seed)  # the original draws from the global RNG
    ids = mmu_prompt(tokenizer, vocab, [META["mmu_questions"][question]])
    answer = generate_answer_tokens(model, vocab, ids, length, top_k=top_k, temperature=tau)
    assert answer[0].tolist() == DATA[f"answer_q{question}_topk{top_k}_tau{tau:g}_seed{seed}"].tolist()


def test_greedy_answers_of_a_padded_batch_equal_the_original(tiny):
    model, tokenizer, vocab = tiny
    ids = mmu_prompt(tokenizer, vocab, META["mmu_questions"])  # left-padded: the questions differ in length
    answer = generate_answer_tokens(model, vocab, ids, 6, top_k=1)
    for i in range(2):
        assert answer[i].tolist() == DATA[f"answer_q{i}_topk1_tau1_seed0"].tolist()


def test_answer_logits_of_a_padded_batch_equal_the_original(tiny):
    """Question + greedy answer, the answer log-prob forward. q1's answer holds a sampled [PAD] id: an ordinary
    token to the original, so the pads are given explicitly (the prompt's), not read off the ids."""
    model, tokenizer, vocab = tiny
    prompt = mmu_prompt(tokenizer, vocab, META["mmu_questions"])  # [2, P] left-padded
    answers = torch.stack([torch.from_numpy(DATA[f"answer_q{i}_topk1_tau1_seed0"]) for i in range(2)])  # [2, A]
    assert (answers[1] == vocab.pad_id).any()
    ids = torch.cat([prompt, answers], dim=1)
    pad = torch.cat([prompt == vocab.pad_id, torch.zeros_like(answers, dtype=torch.bool)], dim=1)
    kwargs = {"attention_mask": mmu_attention_mask(ids, vocab, pad), "position_ids": position_ids(ids, vocab, pad)}
    with torch.no_grad():
        logits = model(ids, **kwargs).logits
    for i in range(2):
        name = f"answer_q{i}_topk1_tau1_seed0"
        assert ids[i, -DATA[f"{name}_ids"].shape[1] :].tolist() == DATA[f"{name}_ids"][0].tolist()
        assert_logits_match(logits[i, -DATA[f"{name}_ids"].shape[1] :], name)
