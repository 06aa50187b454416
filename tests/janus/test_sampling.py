"""Image and answer samplers: seeding, padding correctness, CFG, chunking, EOS handling, argument errors."""

import copy
import dataclasses

import pytest
import torch

from janus.forward import num_image_tokens, position_ids_from_mask
from janus.sampling import image_seed, sample_answer_tokens, sample_image_tokens

PROMPTS = ["a red apple", "two cats are sitting on a yellow sofa in the park at night", "a dog"]
QUESTIONS = ["What color is the sky?", "How many birds are there in the picture? Answer with the letter."]


@pytest.fixture(scope="module")
def peaked(tiny_janus):
    """A copy of the tiny model with sharper heads, so greedy choices have clear margins (robust comparisons)."""
    model, processor = tiny_janus
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.model.generation_head.vision_head.weight.mul_(20.0)
        model.lm_head.weight.mul_(20.0)
    return model, processor


def _images(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def _left_pad(batch, extra: int, pad_id: int):
    """The same batch with `extra` more left-pad columns (masked), for padding-invariance checks."""
    fields = {}
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if field.name in ("input_ids", "uncond_input_ids"):
            value = torch.cat([value.new_full((value.shape[0], extra), pad_id), value], dim=1)
        elif field.name == "attention_mask":
            value = torch.cat([value.new_zeros(value.shape[0], extra), value], dim=1)
        fields[field.name] = value
    return type(batch)(**fields)


def test_image_sampler_shapes_and_seed_determinism(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS)

    def run(seed):
        return sample_image_tokens(model, batch, generator=torch.Generator().manual_seed(seed), return_logps=True)

    first, again, other = run(0), run(0), run(1)
    assert first.tokens.shape == (len(PROMPTS), num_image_tokens(model))
    assert first.tokens.dtype == torch.long
    assert 0 <= int(first.tokens.min()) and int(first.tokens.max()) < model.config.vq_config.num_embeddings
    assert torch.equal(first.tokens, again.tokens)
    assert torch.equal(first.logps, again.logps)
    assert not torch.equal(first.tokens, other.tokens)
    assert bool((first.logps <= 0).all())


def test_image_batch_rows_match_each_prompt_alone_greedy(peaked):
    model, processor = peaked
    batch = processor.encode_generation(PROMPTS)
    assert bool((batch.attention_mask == 0).any()), "prompts of different lengths must be left-padded"
    together = sample_image_tokens(model, batch, top_k=1).tokens
    for row, prompt in enumerate(PROMPTS):
        alone = sample_image_tokens(model, processor.encode_generation([prompt]), top_k=1).tokens
        assert torch.equal(together[row], alone[0]), f"row {row} depends on the other prompts' padding"


def test_image_extra_left_padding_keeps_seeded_samples(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS)
    padded = _left_pad(batch, extra=5, pad_id=processor.special.pad_id)
    a = sample_image_tokens(model, batch, generator=torch.Generator().manual_seed(3), return_logps=True)
    b = sample_image_tokens(model, padded, generator=torch.Generator().manual_seed(3), return_logps=True)
    assert torch.equal(a.tokens, b.tokens)
    torch.testing.assert_close(a.logps, b.logps, atol=1e-4, rtol=0)


def test_cfg_weight_changes_greedy_tokens(peaked):
    model, processor = peaked
    batch = processor.encode_generation(PROMPTS)
    plain = sample_image_tokens(model, batch, cfg_weight=1.0, top_k=1).tokens
    guided = sample_image_tokens(model, batch, cfg_weight=5.0, top_k=1).tokens
    assert not torch.equal(plain, guided)


def test_top_k_one_is_greedy_whatever_the_seed(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS[:2])
    a = sample_image_tokens(model, batch, top_k=1, generator=torch.Generator().manual_seed(0)).tokens
    b = sample_image_tokens(model, batch, top_k=1, generator=torch.Generator().manual_seed(99)).tokens
    assert torch.equal(a, b)


def test_max_batch_size_chunks_give_the_same_greedy_tokens(peaked):
    model, processor = peaked
    batch = processor.encode_generation(PROMPTS)
    whole = sample_image_tokens(model, batch, top_k=1, return_logps=True)
    chunked = sample_image_tokens(model, batch, top_k=1, max_batch_size=2, return_logps=True)
    assert torch.equal(whole.tokens, chunked.tokens)
    torch.testing.assert_close(whole.logps, chunked.logps, atol=1e-4, rtol=0)


def _generators(seeds) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def test_image_rows_with_own_generators_match_each_prompt_alone_and_any_chunking(tiny_janus):
    """Sampled (not greedy) on the unsharpened model: a shared generator would give different rows alone."""
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS)
    assert bool((batch.attention_mask == 0).any()), "prompts of different lengths must be left-padded"
    seeds = [11, 22, 33]
    together = sample_image_tokens(model, batch, generator=_generators(seeds), return_logps=True)
    chunked = sample_image_tokens(model, batch, generator=_generators(seeds), max_batch_size=2)
    assert torch.equal(together.tokens, chunked.tokens)
    for row, (prompt, seed) in enumerate(zip(PROMPTS, seeds)):
        alone = sample_image_tokens(model, processor.encode_generation([prompt]), generator=_generators([seed]))
        assert torch.equal(together.tokens[row], alone.tokens[0]), f"row {row} depends on the rest of the batch"
    # The same prompt with two generators draws two different images; the same generator seed draws the same one.
    twice = processor.encode_generation([PROMPTS[0]] * 3)
    rows = sample_image_tokens(model, twice, generator=_generators([11, 5, 11])).tokens
    assert torch.equal(rows[0], rows[2]) and torch.equal(rows[0], together.tokens[0])
    assert not torch.equal(rows[0], rows[1])


def test_answer_rows_with_own_generators_match_each_question_alone(tiny_janus):
    model, processor = tiny_janus
    images = _images(2, processor.image_size)
    batch = processor.encode_understanding(QUESTIONS, images)
    assert bool((batch.attention_mask == 0).any())
    seeds = [4, 9]
    together = sample_answer_tokens(model, batch, max_new_tokens=8, generator=_generators(seeds))
    for row, (question, seed) in enumerate(zip(QUESTIONS, seeds)):
        single = processor.encode_understanding([question], images[row : row + 1])
        alone = sample_answer_tokens(model, single, max_new_tokens=8, generator=_generators([seed]))
        length = int(alone.completion_mask.sum())
        assert torch.equal(together.completion_ids[row, :length], alone.completion_ids[0, :length])
    swapped = sample_answer_tokens(model, batch, max_new_tokens=8, generator=_generators(seeds[::-1]))
    assert not torch.equal(swapped.completion_ids, together.completion_ids)


def test_generator_list_of_the_wrong_length_is_rejected(tiny_janus):
    model, processor = tiny_janus
    with pytest.raises(ValueError, match="list of 2 generators but the batch has 3 rows"):
        sample_image_tokens(model, processor.encode_generation(PROMPTS), generator=_generators([0, 1]))
    batch = processor.encode_understanding(QUESTIONS, _images(2, processor.image_size))
    with pytest.raises(ValueError, match="list of 3 generators but the batch has 2 rows"):
        sample_answer_tokens(model, batch, max_new_tokens=2, generator=_generators([0, 1, 2]))


def test_image_seed_depends_on_every_key_and_fits_a_generator():
    seeds = {image_seed(b, p, i) for b in range(3) for p in range(3) for i in range(3)}
    assert len(seeds) == 27  # no (base + index) aliasing: seed 1 / prompt 0 differs from seed 0 / prompt 1
    assert image_seed(0, 1, 2) == 4908529878518941816  # pinned: the same seed in every process and on every machine
    assert all(0 <= seed < 2**63 for seed in seeds)
    torch.Generator().manual_seed(max(seeds))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"temperature": 0.0}, "temperature"), ({"top_k": 0}, "top_k"), ({"max_batch_size": 0}, "max_batch_size")],
)
def test_image_sampler_rejects_bad_arguments(tiny_janus, kwargs, match):
    model, processor = tiny_janus
    with pytest.raises(ValueError, match=match):
        sample_image_tokens(model, processor.encode_generation(PROMPTS[:1]), **kwargs)


def test_answer_sampler_seed_determinism(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_understanding(QUESTIONS, _images(2, processor.image_size))

    def run(seed):
        generator = torch.Generator().manual_seed(seed)
        return sample_answer_tokens(model, batch, max_new_tokens=8, generator=generator, return_logps=True)

    first, again, other = run(0), run(0), run(1)
    assert first.completion_ids.shape == first.completion_mask.shape == first.logps.shape
    assert torch.equal(first.completion_ids, again.completion_ids)
    assert not torch.equal(first.completion_ids, other.completion_ids)


def test_answer_batch_rows_match_each_question_alone_greedy(peaked):
    model, processor = peaked
    images = _images(2, processor.image_size)
    batch = processor.encode_understanding(QUESTIONS, images)
    assert bool((batch.attention_mask == 0).any())
    together = sample_answer_tokens(model, batch, max_new_tokens=8, do_sample=False)
    for row, question in enumerate(QUESTIONS):
        single = processor.encode_understanding([question], images[row : row + 1])
        alone = sample_answer_tokens(model, single, max_new_tokens=8, do_sample=False)
        length = int(alone.completion_mask.sum())
        assert torch.equal(together.completion_ids[row, :length], alone.completion_ids[0, :length])


def test_answer_eos_stops_row_pads_and_masks(peaked):
    model, processor = peaked
    pad = processor.special.pad_id
    batch = processor.encode_understanding(QUESTIONS, _images(2, processor.image_size))
    free = sample_answer_tokens(model, batch, max_new_tokens=6, do_sample=False, eos_token_id=-1, pad_token_id=pad)
    assert free.completion_ids.shape[1] == 6 and bool(free.completion_mask.all())
    # Declare row 0's third greedy token to be EOS: each row must stop at its first occurrence of that token.
    eos = int(free.completion_ids[0, 2])

    def expected_length(row):
        hits = (free.completion_ids[row] == eos).nonzero()
        return int(hits[0]) + 1 if len(hits) else 6

    lengths = [expected_length(0), expected_length(1)]
    out = sample_answer_tokens(model, batch, max_new_tokens=6, do_sample=False, eos_token_id=eos, pad_token_id=pad)
    assert out.completion_mask.sum(dim=1).tolist() == lengths
    assert out.completion_ids.shape[1] == max(lengths)
    for row, length in enumerate(lengths):
        assert torch.equal(out.completion_ids[row, :length], free.completion_ids[row, :length])
        assert bool((out.completion_ids[row, length:] == pad).all())
        assert int(out.completion_ids[row, length - 1]) == eos or length == 6


def test_answer_sampling_stops_when_every_row_ended(peaked):
    model, processor = peaked
    batch = processor.encode_understanding(QUESTIONS[:1], _images(1, processor.image_size))
    free = sample_answer_tokens(model, batch, max_new_tokens=4, do_sample=False, eos_token_id=-1)
    eos = int(free.completion_ids[0, 0])
    out = sample_answer_tokens(model, batch, max_new_tokens=4, do_sample=False, eos_token_id=eos)
    assert out.completion_ids.tolist() == [[eos]] and out.completion_mask.tolist() == [[1]]


def test_answer_sampler_rejects_bad_arguments(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_understanding(QUESTIONS[:1], _images(1, processor.image_size))
    with pytest.raises(ValueError, match="top_p"):
        sample_answer_tokens(model, batch, top_p=0.0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sample_answer_tokens(model, batch, max_new_tokens=0)


def test_position_ids_ignore_left_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_answer_sync_ranks_runs_the_same_steps_in_a_process_group(peaked):
    """With sync_ranks the stop test is an all-reduce; in a one-process group it must not change the result."""
    model, processor = peaked
    batch = processor.encode_understanding(QUESTIONS, _images(2, processor.image_size))
    free = sample_answer_tokens(model, batch, max_new_tokens=5, do_sample=False, eos_token_id=-1)
    eos = int(free.completion_ids[1, 1])
    owns_group = not torch.distributed.is_initialized()
    if owns_group:
        store = torch.distributed.HashStore()
        torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        synced = sample_answer_tokens(
            model, batch, max_new_tokens=5, do_sample=False, eos_token_id=eos, sync_ranks=True
        )
    finally:
        if owns_group:
            torch.distributed.destroy_process_group()
    alone = sample_answer_tokens(model, batch, max_new_tokens=5, do_sample=False, eos_token_id=eos, sync_ranks=False)
    assert torch.equal(synced.completion_ids, alone.completion_ids)
    assert torch.equal(synced.completion_mask, alone.completion_mask)
