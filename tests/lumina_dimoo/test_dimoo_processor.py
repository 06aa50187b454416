"""Both tasks' sequences, the padding-aware bidirectional mask and the VQ path on the tiny model."""

import pytest
import torch
from PIL import Image

from lumina_dimoo.attention import bidirectional_mask, dimoo_logits
from lumina_dimoo.processor import DimooProcessor
from lumina_dimoo.tokens import DimooTokens, image_block, understanding_prompt, with_row_breaks
from lumina_dimoo.vq import decode_codes, encode_codes, fit_size, image_to_pixels, vq_scale

T = DimooTokens()


@pytest.fixture(scope="module")
def processor(tiny_dimoo):
    return DimooProcessor(tiny_dimoo[1], T, image_grid=(2, 3))


def test_row_breaks_close_every_row():
    assert with_row_breaks([1, 2, 3, 4, 5, 6], 3, 9) == [1, 2, 3, 9, 4, 5, 6, 9]
    codes = torch.tensor([[0, 1], [2, 8191]])
    assert image_block(codes, T) == [T.boi, T.image_offset, T.image_offset + 1, T.row_break,
                                     T.image_offset + 2, T.image_offset + 8191, T.row_break, T.eoi]  # fmt: skip
    with pytest.raises(ValueError, match="do not fill rows of width=4"):
        with_row_breaks([1, 2, 3], 4, 9)


def test_generation_rows_share_the_masked_tail(processor):
    rows = processor.encode_generation(["a red apple", "two cats"])
    tail = [T.answer_start, T.boi, *[T.mask] * 3, T.row_break, *[T.mask] * 3, T.row_break, T.eoi, T.answer_end]
    for batch in (rows.cond, rows.uncond):
        for i in range(2):
            n = int(batch.attention_mask[i].sum())
            assert batch.input_ids[i, n - len(tail) : n].tolist() == tail
            assert batch.input_ids[i, batch.span_start[i]] == T.boi
    assert T.uncondition in rows.uncond.input_ids[0].tolist() and T.uncondition not in rows.cond.input_ids.tolist()[0]


def test_understanding_image_goes_before_the_closing_user_tag(processor, tiny_dimoo):
    codes = torch.tensor([[5, 6], [7, 8]])
    batch = processor.encode_understanding(["What is it?", "Why?"], [codes, None], answer_length=4)
    prompt = tiny_dimoo[1](understanding_prompt("What is it?"))["input_ids"]
    row = batch.input_ids[0, : int(batch.attention_mask[0].sum())].tolist()
    assert row == prompt[:-1] + image_block(codes, T) + prompt[-1:] + [T.answer_start, *[T.mask] * 4, T.answer_end]
    for i in range(2):
        start = int(batch.span_start[i])
        assert (
            batch.input_ids[i, start - 1] == T.answer_start and batch.input_ids[i, start : start + 4].eq(T.mask).all()
        )


def test_padded_rows_get_their_batch_one_logits(tiny_dimoo, processor):
    """The 4D mask hides pads: each row of a right-padded batch has exactly its own logits (the original cannot)."""
    model = tiny_dimoo[0]
    batch = processor.encode_understanding(["What is it?", "A much longer question here?"], [None, None], 3)
    assert batch.attention_mask[0].sum() < batch.attention_mask[1].sum()
    with torch.no_grad():
        together = dimoo_logits(model, batch.input_ids, batch.attention_mask)
        for i in range(2):
            n = int(batch.attention_mask[i].sum())
            alone = dimoo_logits(model, batch.input_ids[i : i + 1, :n], batch.attention_mask[i : i + 1, :n])
            torch.testing.assert_close(together[i, :n], alone[0], rtol=1e-5, atol=1e-5)
        # Without the mask the pads leak into the short row (why the mask exists).
        unmasked = dimoo_logits(model, batch.input_ids, torch.ones_like(batch.attention_mask))
    n = int(batch.attention_mask[0].sum())
    assert (unmasked[0, :n] - together[0, :n]).abs().max() > 1e-4
    assert not together.isnan().any()


def test_mask_is_bidirectional_over_real_tokens():
    mask = bidirectional_mask(torch.tensor([[1, 1, 0]]))[0, 0]
    assert mask.tolist() == [[True, True, False], [True, True, False], [True, True, True]]


def test_vq_codes_and_pixels(tiny_dimoo):
    vq = tiny_dimoo[0].vqvae
    assert vq_scale(vq) == 16
    image = Image.new("RGB", (100, 70), (200, 30, 60))
    pixels = image_to_pixels(image, 16, max_pixels=64 * 64)
    assert pixels.shape == (3, 48, 64) and 0 <= pixels.min() and pixels.max() <= 1
    codes = encode_codes(vq, pixels[None])
    assert codes.shape == (1, 3, 4) and codes.dtype == torch.long and codes.max() < 8192
    with torch.no_grad():
        out = decode_codes(vq, codes)
    assert out.shape == (1, 3, 48, 64) and 0 <= out.min() and out.max() <= 1
    assert fit_size(40, 20, 16, 10**6) == (32, 16)  # never grown, floored to whole codes
