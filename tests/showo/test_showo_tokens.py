"""Show-o templates and masks: ids of the t2i / mmu layouts, omni-attention, padding that batches rows."""

import pytest
import torch

from showo.checkpoint import load_pretrained
from showo.tiny import build_tiny_checkpoint
from showo.tokens import ShowoVocab, mmu_attention_mask, mmu_ids, omni_attention_mask, position_ids, t2i_ids

REAL = ShowoVocab(llm_vocab_size=50295, codebook_size=8192, bos_id=50256, eos_id=50256)


def test_real_vocab_ids():
    assert (REAL.pad_id, REAL.special("<|soi|>"), REAL.special("<|t2i|>"), REAL.special("<|mmu|>")) == (
        50295, 50296, 50300, 50301)  # fmt: skip
    assert (REAL.image_offset, REAL.mask_id, REAL.vocab_size) == (50305, 58497, 58498)


def test_t2i_ids_left_pad_and_truncate():
    images = torch.full((2, 3), REAL.mask_id)
    ids = t2i_ids(REAL, [[7, 8], list(range(10))], max_seq_length=5, image_ids=images)
    assert ids[0].tolist() == [REAL.pad_id, 50300, 50256, 7, 8, 50256, 50296, *[REAL.mask_id] * 3, 50297]
    assert ids[1, :6].tolist() == [50300, 50256, 0, 1, 2, 50256]  # truncated, still ends with <eot>
    null = t2i_ids(REAL, [[]], 5, images[:1])
    assert null[0, :6].tolist() == [REAL.pad_id] * 3 + [50300, 50256, 50256]


def test_omni_mask_text_causal_image_bidirectional_pads_hidden():
    ids = t2i_ids(REAL, [[7]], max_seq_length=4, image_ids=torch.full((1, 2), REAL.mask_id))
    m = omni_attention_mask(ids, REAL)[0, 0]  # [L, L]; layout: pad t2i sot 7 eot soi M M eoi
    assert not m[1, 2] and m[2, 1] and not m[2, 0]  # text causal, pads hidden
    assert m[5:, 1:].all() and not m[5:, 0].any()  # image block sees all real tokens, no pad
    assert m[0, 0] and not m[0, 1]  # a pad row is causal (never an empty row)


def test_mmu_mask_prefix_bidirectional():
    ids = mmu_ids(REAL, torch.tensor([[50310, 50311], [50312, 50313]]), [[1, 2, 3], [4]])
    assert ids[1, :2].tolist() == [REAL.pad_id] * 2  # left-padded
    m = mmu_attention_mask(ids, REAL)[:, 0]
    # row 0: mmu soi i i eoi sot 1 2 3; <|mmu|> sees the whole image prefix, the question stays causal.
    assert m[0, 0, :5].all() and not m[0, 0, 5] and not m[0, 6, 7]
    assert not m[1, 2:, :2].any()
    pos = position_ids(ids, REAL)
    assert pos[1, 2:].tolist() == list(range(7))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_pretrained(build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "showo"))


def test_padded_understanding_rows_match_unpadded(tiny):
    model, _, vocab = tiny
    image = torch.arange(16)[None] + vocab.image_offset
    short, long = [3, 4], [3, 4, 5, 6, 7]
    batch = mmu_ids(vocab, image.expand(2, -1), [short, long])
    alone = mmu_ids(vocab, image, [short])
    kw = {"attention_mask": mmu_attention_mask(batch, vocab), "position_ids": position_ids(batch, vocab)}
    batched = model(batch, **kw).logits[0, 3:]
    single = model(alone, attention_mask=mmu_attention_mask(alone, vocab)).logits[0]
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)
