"""Masked-diffusion samplers and trajectory log-probs on a toy logits model: parity with the original samplers'
tokens (fixtures from tests/backbones/build_masked_diffusion_fixtures.py), batching, schedules, CFG, rescoring."""

import json
import math
from pathlib import Path

import pytest
import torch
from toy_layouts import (
    LUMINA_VOCAB,
    SHOWO_VOCAB,
    TEXT,
    canvas_from_masks,
    lumina_image_canvas,
    showo_image_canvas,
    text_canvas,
)
from toy_logits import ToyModel, toy_logits

from backbones.masked_diffusion import AtSlots, Canvas, StepScoring, TokenSpace, trajectory_logps
from backbones.maskgit_sampler import MaskGitOptions, sample_maskgit
from backbones.semi_ar_sampler import SemiARTextOptions, sample_semi_ar, transfer_counts

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "masked_diffusion_original.json").read_text())
IMAGE = {"lumina_dimoo": (lumina_image_canvas, LUMINA_VOCAB), "showo": (showo_image_canvas, SHOWO_VOCAB)}


def logits_of(vocab, real=None):
    return lambda ids: toy_logits(ids, vocab, real)


def seeded(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def image_sample(schedule, rows=1, generator=None, **options):
    make_canvas, vocab = IMAGE[schedule]
    canvas, space = make_canvas(rows)
    opts = MaskGitOptions(schedule=schedule, **options)
    return canvas, space, opts, sample_maskgit(logits_of(vocab), canvas, space, opts, generator=generator)


@pytest.mark.parametrize("case", FIXTURES["lumina_dimoo_image"], ids=lambda c: f"s{c['steps']}w{c['cfg']}n{c['seed']}")
def test_lumina_image_matches_original(case):
    _, space, _, sample = image_sample(
        "lumina_dimoo",
        steps=case["steps"],
        cfg_weight=case["cfg"],
        temperature=case["tau"],
        generator=torch.Generator().manual_seed(case["seed"]),
    )
    assert (sample.tokens[0] + space.offset).tolist() == case["tokens"]


@pytest.mark.parametrize("case", FIXTURES["showo_image"], ids=lambda c: f"s{c['steps']}w{c['cfg']}n{c['seed']}")
def test_showo_image_matches_original(case):
    _, _, _, sample = image_sample(
        "showo",
        steps=case["steps"],
        cfg_weight=case["cfg"],
        temperature=case["tau"],
        generator=torch.Generator().manual_seed(case["seed"]),
    )
    assert sample.tokens[0].tolist() == case["tokens"]


def text_options(case, **extra):
    return SemiARTextOptions(
        steps=case["steps"],
        block_length=case["block"],
        temperature=case["tau"],
        cfg_weight=case["cfg"],
        remasking=case["remasking"],
        **extra,
    )


@pytest.mark.parametrize("case", FIXTURES["llada_text"], ids=lambda c: f"s{c['steps']}t{c['tau']}{c['remasking']}")
def test_llada_text_matches_original(case):
    canvas, space = text_canvas()
    fn, opts = logits_of(TEXT["vocab"]), text_options(case)
    seeded_run = sample_semi_ar(fn, canvas, space, opts, generator=torch.Generator().manual_seed(case["seed"]))
    torch.manual_seed(case["seed"])  # the original's global-RNG path
    global_run = sample_semi_ar(fn, canvas, space, opts)
    assert seeded_run.tokens[0].tolist() == case["tokens"]
    assert global_run.tokens[0].tolist() == case["tokens"]


@pytest.mark.parametrize("schedule", ["lumina_dimoo", "showo"])
def test_image_batch_equals_rows_at_batch_one(schedule):
    options = {"steps": 5, "cfg_weight": 2.0, "temperature": 1.0}
    _, _, _, batched = image_sample(schedule, rows=3, generator=seeded(5, 6, 7), **options)
    for row, seed in enumerate((5, 6, 7)):
        _, _, _, single = image_sample(schedule, generator=seeded(seed), **options)
        assert torch.equal(batched.tokens[row], single.tokens[0])
        assert torch.equal(batched.reveal_step[row], single.reveal_step[0])
        torch.testing.assert_close(batched.logps[row], single.logps[0], rtol=0, atol=1e-6)


def padded_text_canvas(prompts, pad_id=0):
    """Left-padded text rows of different prompt lengths and their `real` mask."""
    answer = [TEXT["mask"]] * TEXT["gen_length"] + TEXT["trailing"]
    width = max(map(len, prompts)) + len(answer)
    ids = torch.tensor([[pad_id] * (width - len(p) - len(answer)) + p + answer for p in prompts])
    real = torch.tensor([[False] * (width - len(p) - len(answer)) + [True] * (len(p) + len(answer)) for p in prompts])
    canvas = canvas_from_masks(ids, torch.full_like(ids, TEXT["mask"]), TEXT["mask"])
    canvas.real = real
    return canvas, real


@pytest.mark.parametrize("noise", ["sequence", "slots"])
def test_text_batch_with_padding_equals_rows_at_batch_one(noise):
    prompts = [[3, 4, 5, 6, 7, 8], [11, 12, 13], [5, 6, 7, 8, 9]]
    options = SemiARTextOptions(steps=4, block_length=4, temperature=0.9, noise=noise)
    canvas, real = padded_text_canvas(prompts)
    space = TokenSpace(TEXT["mask"])
    batched = sample_semi_ar(logits_of(TEXT["vocab"], real), canvas, space, options, generator=seeded(1, 2, 3))
    for row, (prompt, seed) in enumerate(zip(prompts, (1, 2, 3))):
        single_canvas, single_real = padded_text_canvas([prompt])
        single = sample_semi_ar(logits_of(TEXT["vocab"]), single_canvas, space, options, generator=seeded(seed))
        assert torch.equal(batched.tokens[row], single.tokens[0])
        assert torch.equal(batched.reveal_step[row], single.reveal_step[0])


@pytest.mark.parametrize(
    ("schedule", "steps", "expected"),
    [("lumina_dimoo", 5, [1, 2, 2, 4, 3]), ("showo", 5, [1, 2, 2, 4, 3]), ("lumina_dimoo", 4, [1, 3, 4, 4])],
)
def test_image_schedule_reveal_counts(schedule, steps, expected):
    # 12 codes: still masked after step s = floor(12 cos(pi/2 (s+1)/T)) (>= 1), all revealed at the last step.
    kept = [max(1, math.floor(12 * math.cos(math.pi / 2 * (s + 1) / steps))) for s in range(steps - 1)] + [0]
    assert [12 - kept[0]] + [a - b for a, b in zip(kept, kept[1:])] == expected
    _, _, _, sample = image_sample(schedule, rows=2, generator=seeded(0, 1), steps=steps, temperature=1.0)
    counts = [(sample.reveal_step == s).sum(1).tolist() for s in range(steps)]
    assert counts == [[n, n] for n in expected]
    assert bool((sample.tokens >= 0).all()) and bool((sample.reveal_step >= 0).all())


def test_text_transfer_counts_and_blocks():
    assert transfer_counts(torch.tensor([8, 7]), 3).tolist() == [[3, 3, 2], [3, 2, 2]]
    canvas, space = text_canvas(rows=2)
    options = SemiARTextOptions(steps=4, block_length=4, temperature=1.0)
    sample = sample_semi_ar(logits_of(TEXT["vocab"]), canvas, space, options, generator=seeded(0, 1))
    # Block 0 (slots 0-3) is decoded at steps 0-1, block 1 at steps 2-3, two tokens per step.
    assert bool((sample.reveal_step[:, :4] < 2).all()) and bool((sample.reveal_step[:, 4:] >= 2).all())
    assert [(sample.reveal_step == s).sum(1).tolist() for s in range(4)] == [[2, 2]] * 4


def test_cfg_mix_forms_and_sampler_logps_at_step_zero():
    cond, uncond = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    maskgit = StepScoring(cfg_weight=3.0).mix(cond, uncond)
    torch.testing.assert_close(maskgit, 4.0 * cond - 3.0 * uncond)
    torch.testing.assert_close(StepScoring(cfg_weight=3.0, cfg_form="llada").mix(cond, uncond), maskgit)
    canvas, space, _, sample = image_sample(
        "lumina_dimoo", generator=seeded(3), steps=4, cfg_weight=3.0, temperature=0.5
    )
    # Step 0's tokens scored by hand: log_softmax(((1+w) c - w u) / tau) over the codebook at the all-masked state.
    c = toy_logits(canvas.ids, LUMINA_VOCAB)[0, canvas.slots[0], 24:40]
    u = toy_logits(canvas.uncond_ids, LUMINA_VOCAB)[0, canvas.uncond_slots[0], 24:40]
    expected = ((4.0 * c - 3.0 * u) / 0.5).log_softmax(-1).gather(-1, sample.tokens[0].unsqueeze(-1))[:, 0]
    first = sample.reveal_step[0] == 0
    torch.testing.assert_close(sample.logps[0][first], expected[first])


def rescore_cases():
    for schedule in ("lumina_dimoo", "showo"):
        for cfg in (0.0, 2.5):
            yield schedule, cfg


@pytest.mark.parametrize(("schedule", "cfg"), list(rescore_cases()))
def test_image_trajectory_logps_equal_sampler_logps(schedule, cfg):
    canvas, space, options, sample = image_sample(
        schedule, rows=3, generator=seeded(0, 1, 2), steps=6, cfg_weight=cfg, temperature=0.8
    )
    logps, mask = trajectory_logps(logits_of(IMAGE[schedule][1]), canvas, sample, space, options.scoring())
    assert bool(mask.all())
    assert (logps - sample.logps).abs().max().item() < 1e-5


@pytest.mark.parametrize("case", FIXTURES["llada_text"][3::4], ids=lambda c: f"t{c['tau']}w{c['cfg']}")
def test_text_trajectory_logps_equal_sampler_logps(case):
    canvas, space = text_canvas(rows=2)
    options = text_options(case)
    sample = sample_semi_ar(logits_of(TEXT["vocab"]), canvas, space, options, generator=seeded(4, 5))
    logps, mask = trajectory_logps(logits_of(TEXT["vocab"]), canvas, sample, space, options.scoring())
    assert (logps - sample.logps * mask).abs().max().item() < 1e-5


class CountingLogits:
    def __init__(self, vocab):
        self.vocab, self.calls = vocab, 0

    def __call__(self, ids):
        self.calls += 1
        return toy_logits(ids, self.vocab)


@pytest.mark.parametrize(("group", "forwards"), [(1, 5), (2, 3), (5, 1)])
def test_step_group_reduces_forwards(group, forwards):
    canvas, space, options, sample = image_sample(
        "lumina_dimoo", rows=2, generator=seeded(0, 1), steps=5, cfg_weight=2.0, temperature=1.0
    )
    counting = CountingLogits(LUMINA_VOCAB)
    logps, _ = trajectory_logps(counting, canvas, sample, space, options.scoring(), step_group=group)
    assert counting.calls == 2 * forwards  # cond + uncond per group
    if group == 5:  # one group: every token scored at the all-masked state
        c = toy_logits(canvas.ids, LUMINA_VOCAB).gather(1, canvas.slots.unsqueeze(-1).expand(-1, -1, 40))[..., 24:]
        u = toy_logits(canvas.uncond_ids, LUMINA_VOCAB)
        u = u.gather(1, canvas.uncond_slots.unsqueeze(-1).expand(-1, -1, 40))[..., 24:]
        expected = (3.0 * c - 2.0 * u).log_softmax(-1).gather(-1, sample.tokens.unsqueeze(-1))[..., 0]
        torch.testing.assert_close(logps, expected)
    elif group == 1:
        assert (logps - sample.logps).abs().max().item() < 1e-5
    else:  # later tokens are scored at an earlier (more masked) state than they were drawn at
        assert (logps - sample.logps).abs().max().item() > 1e-3
    conditional = CountingLogits(LUMINA_VOCAB)
    trajectory_logps(conditional, canvas, sample, space, options.scoring(conditional=True), step_group=group)
    assert conditional.calls == forwards


def test_logits_at_slots_only_give_the_same_run():
    def at_slots(ids, slots):
        logits = toy_logits(ids, LUMINA_VOCAB)
        return logits[torch.arange(ids.shape[0]).unsqueeze(1), slots]  # [B, N, V]

    canvas, space, options, full = image_sample(
        "lumina_dimoo", rows=2, generator=seeded(0, 1), steps=4, cfg_weight=2.0
    )
    sliced = sample_maskgit(AtSlots(at_slots), canvas, space, options, generator=seeded(0, 1))
    assert torch.equal(full.tokens, sliced.tokens) and torch.equal(full.logps, sliced.logps)
    logps, _ = trajectory_logps(AtSlots(at_slots), canvas, sliced, space, options.scoring())
    assert (logps - full.logps).abs().max().item() < 1e-5


def test_trajectory_logps_carry_gradient():
    canvas, space, options, sample = image_sample("showo", rows=2, generator=seeded(0, 1), steps=4, cfg_weight=1.5)
    model = ToyModel(SHOWO_VOCAB)
    logps, mask = trajectory_logps(model, canvas, sample, space, options.scoring(), step_group=2)
    (logps * mask).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    reference, _ = trajectory_logps(logits_of(SHOWO_VOCAB), canvas, sample, space, options.scoring(), step_group=2)
    torch.testing.assert_close(logps.detach(), reference)


def test_text_stops_after_the_block_with_a_stop_id():
    canvas, space = text_canvas(rows=2)
    stop = 7

    def favour_stop_in_row0(ids):
        logits = toy_logits(ids, TEXT["vocab"])
        logits[0, canvas.slots[0, 1], stop] += 50.0  # row 0 writes the stop id at slot 1 (block 0)
        logits[:, :, stop] -= 50.0 * (torch.arange(2) == 1).view(2, 1).float()  # row 1 never does
        return logits

    options = SemiARTextOptions(steps=4, block_length=4, temperature=1.0, stop_ids=(stop,))
    sample = sample_semi_ar(favour_stop_in_row0, canvas, space, options, generator=seeded(0, 1))
    assert sample.tokens[0, 1].item() == stop
    assert sample.reveal_step[0, 4:].tolist() == [-1] * 4 and sample.tokens[0, 4:].tolist() == [-1] * 4
    assert sample.completion_mask[0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert sample.completion_mask[1].tolist() == [1] * 8 and bool((sample.reveal_step[1] >= 0).all())
    logps, mask = trajectory_logps(favour_stop_in_row0, canvas, sample, space, options.scoring())
    assert (logps - sample.logps * mask).abs().max().item() < 1e-5 and mask[0].sum() == 2


def test_bad_inputs_name_the_fix():
    canvas, space = text_canvas()
    with pytest.raises(ValueError, match="block_length"):
        sample_semi_ar(logits_of(40), canvas, space, SemiARTextOptions(steps=4, block_length=3))
    with pytest.raises(ValueError, match="one per row"):
        sample_semi_ar(
            logits_of(40), canvas, space, SemiARTextOptions(steps=2, block_length=8), generator=seeded(0, 1)
        )
    with pytest.raises(ValueError, match="slots"):
        Canvas(ids=torch.zeros(2, 5, dtype=torch.long), slots=torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="schedule"):
        MaskGitOptions(steps=4, schedule="maskgit")
    with pytest.raises(ValueError, match="uncond"):
        c, s = text_canvas()
        no_uncond = Canvas(ids=c.ids, slots=c.slots)
        sample_semi_ar(logits_of(40), no_uncond, s, SemiARTextOptions(steps=2, block_length=8, cfg_weight=1.0))
