"""Lumina-DiMOO's token ids and prompt templates: the one place for both (Lumina-DiMOO `config.py`, `train/train.py`).

Text and image codes share one vocabulary: LLaDA's text ids, then 8192 aMUSEd-VQ codes from `image_offset`. An image
is `<IMAGE>` + rows of codes, each row closed by a row-break token, + `</IMAGE>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

UNDERSTANDING_SYSTEM_PROMPT = (
    "You are a multimodal model that can process both text and images. Answer the following question based on the "
    "provided images. Analyze each image and combine relevant details to answer."
)
# Inference spelling; the released SFT records spell it "accroding" (Lumina-DiMOO `pre_tokenizer/pre_tokenize.py`).
GENERATION_SYSTEM_PROMPT = "Generate an image according to the text prompt."
UNCONDITION_TEXT = "<uncondition>"  # the CFG null prompt, one added token
# Lumina-DiMOO's VLMEvalKit wrapper (`vlmeval/vlm/lumina_dimmo/model.py`, config gen_length=1024, steps=1) answers
# with `<answer>` + ONE mask + `</answer>` + gen_length - 1 answer pads: one greedy token in one forward.
ONE_TOKEN_ANSWER_PADS = 1023


@dataclass(frozen=True)
class DimooTokens:
    """Special ids of a Lumina-DiMOO vocabulary (defaults: the released model's, Lumina-DiMOO `config.py`)."""

    mask: int = 126336  # <|mdm_mask|>
    row_break: int = 126084  # closes every row of image codes
    image_offset: int = 126356  # image code c is token image_offset + c
    codebook_size: int = 8192
    boi: int = 126349  # <IMAGE>
    eoi: int = 126350  # </IMAGE>
    uncondition: int = 126351
    answer_start: int = 126354  # <answer>
    answer_end: int = 126355  # </answer>
    answer_pad: int = 126339  # pads answers in SFT records (train.py); also masked there, so the model fills it
    eos: int = 126081  # LLaDA <|endoftext|>

    @property
    def vocab_size(self) -> int:
        """Logit width the image codes need: text ids, then the codebook."""
        return self.image_offset + self.codebook_size

    def is_image_code(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.image_offset) & (ids < self.vocab_size)


def understanding_prompt(question: str, system_prompt: str = UNDERSTANDING_SYSTEM_PROMPT) -> str:
    return f"<system>{system_prompt}</system><user>{question}</user>"


def generation_prompt(prompt: str, system_prompt: str = GENERATION_SYSTEM_PROMPT) -> str:
    return f"<system>{system_prompt}</system><user>{prompt}</user>"


def with_row_breaks(codes: Sequence[int], width: int, row_break: int) -> list[int]:
    """A flat grid of `len(codes) // width` rows -> the same ids with `row_break` after every row."""
    if width < 1 or len(codes) % width:
        raise ValueError(f"{len(codes)} image tokens do not fill rows of width={width}; pass the grid's width.")
    out: list[int] = []
    for start in range(0, len(codes), width):
        out += [*codes[start : start + width], row_break]
    return out


def image_block(codes: torch.Tensor, tokens: DimooTokens) -> list[int]:
    """Image codes [h, w] in [0, codebook) -> `<IMAGE>` + rows of vocabulary ids with row breaks + `</IMAGE>`."""
    ids = (codes.long() + tokens.image_offset).flatten().tolist()
    return [tokens.boi, *with_row_breaks(ids, codes.shape[-1], tokens.row_break), tokens.eoi]


def masked_image_block(height: int, width: int, tokens: DimooTokens) -> list[int]:
    """The all-masked image a text-to-image rollout starts from: `<IMAGE>` + h rows of w masks + `</IMAGE>`."""
    return [tokens.boi, *with_row_breaks([tokens.mask] * (height * width), width, tokens.row_break), tokens.eoi]
