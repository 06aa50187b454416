"""Janus-Pro templates, special tokens, batching (left padding, CFG prompts) and image preprocessing."""

import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from janus.processor import (
    EOS_TOKEN,
    GenerationBatch,
    SpecialTokens,
    UnderstandingBatch,
    format_conversation,
)

GREY = 127 / 255 * 2 - 1  # the (127,127,127) pad after normalisation with mean = std = 0.5


@pytest.fixture(scope="module")
def processor(tiny_janus):
    return tiny_janus[1]


def test_special_tokens_looked_up_by_string(processor):
    tok = processor.tokenizer
    special = processor.special
    assert special.bos_id == tok.convert_tokens_to_ids("<｜begin▁of▁sentence｜>")
    assert special.eos_id == tok.convert_tokens_to_ids("<｜end▁of▁sentence｜>")
    assert special.pad_id == tok.convert_tokens_to_ids("<｜▁pad▁｜>")
    assert special.boi_id == tok.convert_tokens_to_ids("<begin_of_image>")
    assert special.eoi_id == tok.convert_tokens_to_ids("<end_of_image>")
    assert special.image_id == tok.convert_tokens_to_ids("<image_placeholder>")
    assert len({special.bos_id, special.eos_id, special.pad_id, special.boi_id, special.eoi_id, special.image_id}) == 6


def test_missing_special_token_is_named():
    backend = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    present = [
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        "<｜▁pad▁｜>",
        "<begin_of_image>",
        "<image_placeholder>",
    ]
    backend.add_special_tokens(present)
    with pytest.raises(ValueError, match="<end_of_image>"):
        SpecialTokens.from_tokenizer(PreTrainedTokenizerFast(tokenizer_object=backend))


def test_understanding_prompt_exact(processor):
    expected = (
        "You are a helpful language and vision assistant. You are able to understand the visual content that the "
        "user provides, and assist the user with a variety of tasks using natural language.\n\n"
        "<|User|>: <image_placeholder>\nWhat is shown?\n\n<|Assistant|>:"
    )
    assert processor.understanding_prompt("What is shown?") == expected
    assert processor.understanding_prompt("What is shown?  \n", system_prompt="") == (
        "<|User|>: <image_placeholder>\nWhat is shown?\n\n<|Assistant|>:"
    )
    with pytest.raises(ValueError, match="image_placeholder"):
        processor.understanding_prompt("<image_placeholder> twice")


def test_generation_prompt_exact(processor):
    assert processor.generation_prompt("a red apple") == "<|User|>: a red apple\n\n<|Assistant|>:<begin_of_image>"


def test_finished_assistant_turn_ends_with_eos():
    text = format_conversation([("<|User|>", "hi"), ("<|Assistant|>", "hello"), ("<|User|>", "bye")], "sys")
    assert text == f"sys\n\n<|User|>: hi\n\n<|Assistant|>: hello{EOS_TOKEN}<|User|>: bye"


def test_understanding_batch_expands_images_and_left_pads(processor):
    special, n = processor.special, processor.num_image_tokens
    images = [Image.new("RGB", (40, 20), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))]
    questions = ["What color is the apple on the table?", "Hi"]
    batch = processor.encode_understanding(questions, images)
    assert batch.pixel_values.shape == (2, 3, processor.image_size, processor.image_size)
    for row, mask, question, image in zip(batch.input_ids, batch.attention_mask, questions, images):
        ids = row[mask.bool()].tolist()
        assert ids[0] == special.bos_id and ids.count(special.image_id) == n
        start = ids.index(special.boi_id)
        assert ids[start + 1 : start + 1 + n] == [special.image_id] * n and ids[start + 1 + n] == special.eoi_id
        text = processor.tokenizer.decode(ids[1:start] + ids[start + n + 2 :])
        assert text == processor.understanding_prompt(question).replace("<image_placeholder>", "")
        alone = processor.encode_understanding([question], [image])
        assert alone.input_ids[0].tolist() == ids  # the same row as when encoded alone
    short = batch.attention_mask[1]
    assert short[0] == 0 and short[-1] == 1 and (batch.input_ids[1][short == 0] == special.pad_id).all()
    # Left padding: zeros only before the ones.
    assert torch.equal(short, short.sort().values)


def test_generation_batch_and_uncond_prompt(processor):
    special = processor.special
    batch = processor.encode_generation(["a red apple on a wooden table", "a cat"])
    assert (batch.input_ids[:, -1] == special.boi_id).all()
    assert batch.uncond_input_ids.shape == batch.input_ids.shape
    for row, uncond, mask in zip(batch.input_ids, batch.uncond_input_ids, batch.attention_mask):
        real, real_uncond = row[mask.bool()], uncond[mask.bool()]
        assert real[0] == special.bos_id and real_uncond[0] == special.bos_id
        assert real_uncond[-1] == special.boi_id
        assert (real_uncond[1:-1] == special.pad_id).all()
        assert (uncond[~mask.bool()] == special.pad_id).all()
    assert batch.attention_mask[1, 0] == 0 and batch.attention_mask[0].all()


def test_batch_repeat_interleave_and_to(processor):
    batch = processor.encode_generation(["a", "a dog"])
    rep = batch.repeat_interleave(3)
    assert isinstance(rep, GenerationBatch) and rep.input_ids.shape[0] == 6
    assert torch.equal(rep.uncond_input_ids[3], batch.uncond_input_ids[1])
    und = processor.encode_understanding(["q1", "q2"], torch.zeros(2, 3, 32, 32)).repeat_interleave(2)
    assert isinstance(und, UnderstandingBatch) and und.pixel_values.shape[0] == 4
    moved = und.to("cpu", dtype=torch.bfloat16)
    assert moved.pixel_values.dtype == torch.bfloat16 and moved.input_ids.dtype == torch.long


def test_decode_answers_stops_at_eos_and_skips_specials(processor):
    special = processor.special
    answer = processor.tokenizer.encode(" The answer is B.", add_special_tokens=False)
    tail = processor.tokenizer.encode(" junk", add_special_tokens=False)
    row = [*answer, special.eos_id, *tail]
    padded = [special.boi_id, *answer, special.pad_id, special.pad_id, special.pad_id]
    padded = padded[: len(row)] + [special.pad_id] * (len(row) - len(padded))
    texts = processor.decode_answers(torch.tensor([row, padded]))
    assert texts == ["The answer is B.", "The answer is B."]


def test_pil_preprocessing_keeps_aspect_and_pads_grey(processor):
    size = processor.image_size
    wide = processor.preprocess_images([Image.new("RGB", (64, 32), (255, 0, 0))])[0]
    assert wide.shape == (3, size, size)
    assert torch.allclose(wide[:, : size // 4], torch.full_like(wide[:, : size // 4], GREY))  # top band grey
    assert torch.allclose(wide[:, size // 2], torch.tensor([1.0, -1.0, -1.0]).view(3, 1).expand(3, size))
    tall = processor.preprocess_images([Image.new("L", (16, 32), 255)])[0]  # grey-scale converted to RGB
    assert torch.allclose(tall[:, :, : size // 4], torch.full_like(tall[:, :, : size // 4], GREY))
    assert torch.allclose(tall[:, :, size // 2], torch.ones(3, size))
    assert wide.min() >= -1 and wide.max() <= 1


def test_tensor_path_matches_pil_path(processor):
    gen = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 12, generator=gen), size=(24, 48), mode="bilinear")
    pil = Image.fromarray((smooth[0].permute(1, 2, 0) * 255).round().byte().numpy())
    from_pil = processor.preprocess_images([pil])
    from_tensor = processor.preprocess_images((smooth * 255).round() / 255 * 2 - 1)
    assert from_tensor.shape == from_pil.shape
    assert (from_tensor - from_pil).abs().max() < 0.05
    square = torch.rand(2, 3, processor.image_size, processor.image_size) * 2 - 1
    assert torch.equal(processor.preprocess_images(square), square)  # VQ-decoded images pass through
    with pytest.raises(ValueError, match=r"\[N,3,H,W\]"):
        processor.preprocess_images(torch.zeros(3, 32, 32))


def test_sized_tensor_is_normalised_by_the_processors_own_statistics(processor):
    """Issue 25: an already-sized tensor skipped normalisation, right only for mean = std = 0.5."""
    from janus.processor import JanusProcessor

    clip_mean, clip_std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    clip = JanusProcessor(
        processor.tokenizer, processor.image_size, processor.num_image_tokens, image_mean=clip_mean, image_std=clip_std
    )
    size = processor.image_size
    pixels = torch.randint(0, 256, (size, size, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    from_pil = clip.preprocess_images([Image.fromarray(pixels.numpy())])
    from_tensor = clip.preprocess_images(pixels.permute(2, 0, 1)[None].float() / 255 * 2 - 1)
    assert (from_tensor - from_pil).abs().max() < 1e-5


def test_mismatched_lengths_raise(processor):
    with pytest.raises(ValueError, match="same length"):
        processor.encode_understanding(["a", "b"], torch.zeros(1, 3, 32, 32))
