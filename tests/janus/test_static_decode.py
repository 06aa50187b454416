"""Compiled decode (janus.static_decode): same tokens and log-probs as eager, no host sync per step, one cache
storage for the whole loop, bounded recompiles, and a one-warning fallback to eager when compilation fails.

Compiling the tiny model's steps takes ~15-100 s per step function on a 2-core CPU (once per process: every test
uses the same sampling options, so they share the graphs; on a heavily shared machine it took minutes), hence
the slow marks.
"""

import logging

import pytest
import torch

from janus import static_decode
from janus.draw import draw_race_noise, race_tokens
from janus.sampling import sample_answer_tokens, sample_image_tokens

PROMPTS = ["a red apple", "two cats are sitting on a yellow sofa in the park at night", "a dog"]
QUESTIONS = ["What color is the sky?", "How many birds are there in the picture? Answer with the letter."]
# One set of sampling options for every compiled call, so every test reuses the same compiled graphs.
IMAGE_OPTIONS = dict(cfg_weight=5.0, temperature=1.0, return_logps=True)
ANSWER_OPTIONS = dict(max_new_tokens=24, temperature=1.0, return_logps=True)


def _generators(seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def _images(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def _images_both(model, batch, seed=0, generator=None):
    out = {}
    for decode in ("eager", "compiled"):
        gen = torch.Generator().manual_seed(seed) if generator is None else generator()
        out[decode] = sample_image_tokens(model, batch, generator=gen, decode=decode, **IMAGE_OPTIONS)
    return out["eager"], out["compiled"]


def test_exponential_race_draws_from_the_softmax():
    logits = torch.tensor([[2.0, 0.0, -1.0, 1.0]]).repeat(40000, 1)  # [R, 4]
    noise = draw_race_noise(torch.empty_like(logits), torch.Generator().manual_seed(0))
    counts = torch.bincount(race_tokens(logits, noise), minlength=4).float() / logits.shape[0]
    assert torch.allclose(counts, logits[0].softmax(-1), atol=0.01)
    filtered = logits.masked_fill(torch.tensor([True, False, False, False]), float("-inf"))
    assert int(race_tokens(filtered, noise).eq(0).sum()) == 0  # filtered tokens never win


def test_per_row_generators_fill_rows_like_separate_draws():
    rows = draw_race_noise(torch.empty(2, 5), _generators([3, 4]))
    alone = draw_race_noise(torch.empty(1, 5), _generators([4]))
    assert torch.equal(rows[1:], alone)


def test_unknown_decode_is_rejected(tiny_janus):
    model, processor = tiny_janus
    with pytest.raises(ValueError, match="decode='graph' is unknown"):
        sample_image_tokens(model, processor.encode_generation(PROMPTS[:1]), decode="graph")


@pytest.mark.slow
def test_compiled_image_tokens_and_logps_match_eager(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS)  # left-padded, three lengths
    assert bool((batch.attention_mask == 0).any())
    eager, compiled = _images_both(model, batch)
    assert (eager.tokens == compiled.tokens).float().mean() >= 0.99
    assert (eager.logps - compiled.logps).abs().max() < 1e-4
    # Per-row generators give the same draws too, and another seed other tokens.
    eager_rows, compiled_rows = _images_both(model, batch, generator=lambda: _generators([5, 6, 7]))
    assert (eager_rows.tokens == compiled_rows.tokens).float().mean() >= 0.99
    assert not torch.equal(compiled_rows.tokens, compiled.tokens)
    assert not static_decode.compilation_failed()


@pytest.mark.slow
def test_compiled_answers_match_eager_and_stop_where_eager_stops(tiny_janus):
    model, processor = tiny_janus
    images = _images(2, processor.image_size)
    pad = processor.special.pad_id
    same = processor.encode_understanding([QUESTIONS[0]] * 2, images[:1].repeat(2, 1, 1, 1))
    free = sample_answer_tokens(model, same, generator=_generators([4, 4]), eos_token_id=-1, pad_token_id=pad)
    # Row 0's fourth token is declared EOS: both (identical) rows end by step 4, long before the compiled loop's
    # first "all ended?" check at step ANSWER_CHECK_EVERY, so the extra steps must be trimmed off.
    eos = int(free.completion_ids[0, 3])
    assert int((free.completion_ids[0] == eos).nonzero()[0]) <= 3 < static_decode.ANSWER_CHECK_EVERY
    mixed = processor.encode_understanding(QUESTIONS, images)
    for batch, seeds in ((same, [4, 4]), (mixed, [4, 9])):
        out = {
            decode: sample_answer_tokens(
                model,
                batch,
                generator=_generators(seeds),
                eos_token_id=eos,
                pad_token_id=pad,
                decode=decode,
                **ANSWER_OPTIONS,
            )
            for decode in ("eager", "compiled")
        }
        eager, compiled = out["eager"], out["compiled"]
        assert compiled.completion_ids.shape == eager.completion_ids.shape
        assert (compiled.completion_ids == eager.completion_ids).float().mean() >= 0.99
        assert torch.equal(compiled.completion_mask, eager.completion_mask)
        assert (compiled.logps - eager.logps).abs().max() < 1e-4
        if batch is same:
            assert eager.completion_ids.shape[1] <= 4  # both rows ended early, and so did the compiled result


@pytest.mark.slow
def test_compiled_steps_do_not_sync_and_dispatch_a_third_of_eager(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS)
    counts = {}
    for decode in ("eager", "compiled"):

        def run(decode=decode):
            generator = torch.Generator().manual_seed(0)
            return sample_image_tokens(model, batch, generator=generator, decode=decode, **IMAGE_OPTIONS)

        run()  # compile / warm up
        counts[decode] = static_decode.steady_step_op_counts(run)
    ops_compiled, syncs_compiled = counts["compiled"]
    assert syncs_compiled == 0
    assert ops_compiled <= counts["eager"][0] / 3


@pytest.mark.slow
def test_compiled_loop_writes_one_cache_storage_in_place(tiny_janus, monkeypatch):
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS)
    seen = []
    real = static_decode.compiled_step

    def recording(step, device):
        compiled = real(step, device)

        def call(model, kv, state, *args):
            before = kv.keys[0][:, :, int(kv.write_index)].clone()
            compiled(model, kv, state, *args)
            written = kv.keys[0][:, :, int(kv.write_index) - 1]
            seen.append((kv.keys[0].data_ptr(), state.hidden.data_ptr(), bool((written != before).any())))

        return call

    monkeypatch.setattr(static_decode, "compiled_step", recording)
    generator = torch.Generator().manual_seed(0)
    tokens = sample_image_tokens(model, batch, generator=generator, decode="compiled", **IMAGE_OPTIONS)
    assert len(seen) == tokens.tokens.shape[1]
    assert len({(keys, hidden) for keys, hidden, _ in seen}) == 1  # one storage for the whole loop
    assert all(written for *_, written in seen)  # and each step wrote its column into it


@pytest.mark.slow
def test_prompt_lengths_within_a_bucket_reuse_the_compiled_step(tiny_janus):
    from torch._dynamo.utils import counters

    model, processor = tiny_janus
    sample = dict(generator=torch.Generator().manual_seed(0), decode="compiled", **IMAGE_OPTIONS)
    sample_image_tokens(model, processor.encode_generation(PROMPTS), **sample)
    before = counters["stats"]["unique_graphs"]
    for words in (1, 4, 9):
        batch = processor.encode_generation([" ".join(["apple"] * words)] * len(PROMPTS))
        sample_image_tokens(model, batch, **sample)
    assert counters["stats"]["unique_graphs"] == before
    assert static_decode.bucketed_length(5) == static_decode.bucketed_length(static_decode.LENGTH_BUCKET)


def test_failed_compilation_falls_back_to_eager_with_one_warning(tiny_janus, monkeypatch, caplog):
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS[:2])

    def broken_compile(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(static_decode, "_COMPILED", {})
    monkeypatch.setattr(static_decode, "_FALLBACK", {"failed": False})
    monkeypatch.setattr(torch, "compile", broken_compile)
    eager = sample_image_tokens(model, batch, generator=torch.Generator().manual_seed(3), **IMAGE_OPTIONS)
    with caplog.at_level(logging.WARNING, logger="janus.static_decode"):
        for _ in range(2):
            compiled = sample_image_tokens(
                model, batch, generator=torch.Generator().manual_seed(3), decode="compiled", **IMAGE_OPTIONS
            )
            assert torch.equal(compiled.tokens, eager.tokens)  # the generator was rewound before the eager rerun
    warnings = [r for r in caplog.records if "falling back to the eager loop" in r.getMessage()]
    assert len(warnings) == 1 and "no compiler here" in warnings[0].getMessage()
    assert static_decode.compilation_failed()
