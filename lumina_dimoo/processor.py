"""Token sequences of both Lumina-DiMOO tasks, batched by right padding (the mask in `lumina_dimoo.attention`).

Understanding (Lumina-DiMOO `train/train.py`, VLMEvalKit wrapper): prompt with the image block inserted before its
last token, then `<answer>` + L masks + `</answer>`. Generation (`inference/inference_t2i.py`): prompt, then
`<answer><IMAGE>` + rows of masks + `</IMAGE></answer>`; the CFG branch swaps the prompt for `<uncondition>` and keeps
the same tail, so its image tokens sit at other positions (as in the original).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from lumina_dimoo.tokens import (
    GENERATION_SYSTEM_PROMPT,
    UNCONDITION_TEXT,
    UNDERSTANDING_SYSTEM_PROMPT,
    DimooTokens,
    generation_prompt,
    image_block,
    masked_image_block,
    understanding_prompt,
)


@dataclass
class PaddedRows:
    """Right-padded rows: ids [B, L], mask [B, L] (1 = real), and where each row's generated span starts [B]."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    span_start: torch.Tensor

    def to(self, device: str | torch.device) -> PaddedRows:
        return PaddedRows(self.input_ids.to(device), self.attention_mask.to(device), self.span_start.to(device))


def pad_rows(rows: Sequence[Sequence[int]], span_start: Sequence[int], pad_id: int) -> PaddedRows:
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return PaddedRows(ids, mask, torch.tensor(list(span_start), dtype=torch.long))


@dataclass
class GenerationRows:
    """A text-to-image batch: the conditional and the `<uncondition>` rows; `span_start` points at `<IMAGE>`."""

    cond: PaddedRows
    uncond: PaddedRows


class DimooProcessor:
    """Tokenizer + special ids + image grid: builds the sequences, decodes answers."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, tokens: DimooTokens, image_grid: tuple[int, int]):
        self.tokenizer = tokenizer
        self.tokens = tokens
        self.image_grid = image_grid  # (rows, codes per row) of generated images

    def encode(self, text: str) -> list[int]:
        """Prompt text -> ids, with the tokenizer's own special-token rule (as the original's `tokenizer(text)`)."""
        return list(self.tokenizer(text)["input_ids"])

    def generation_tail(self) -> list[int]:
        return [self.tokens.answer_start, *masked_image_block(*self.image_grid, self.tokens), self.tokens.answer_end]

    def encode_generation(
        self, prompts: Sequence[str], system_prompt: str = GENERATION_SYSTEM_PROMPT
    ) -> GenerationRows:
        tail = self.generation_tail()
        cond = [self.encode(generation_prompt(p, system_prompt)) for p in prompts]
        uncond = self.encode(generation_prompt(UNCONDITION_TEXT, system_prompt))
        pad = self.tokens.eos
        # span_start = the `<IMAGE>` token, one after `<answer>`.
        return GenerationRows(
            pad_rows([c + tail for c in cond], [len(c) + 1 for c in cond], pad),
            pad_rows([uncond + tail] * len(prompts), [len(uncond) + 1] * len(prompts), pad),
        )

    def understanding_row(
        self, question: str, codes: torch.Tensor | None, system_prompt: str, length: int, answer_pads: int = 0
    ) -> list:
        """One prompt: the image block goes before the prompt's last token (`</user>`), then the masked answer,
        then `answer_pads` answer-pad tokens (given, seen by the bidirectional attention)."""
        prompt = self.encode(understanding_prompt(question, system_prompt))
        if codes is not None:
            prompt = prompt[:-1] + image_block(codes, self.tokens) + prompt[-1:]
        answer = [self.tokens.answer_start, *[self.tokens.mask] * length, self.tokens.answer_end]
        return [*prompt, *answer, *[self.tokens.answer_pad] * answer_pads]

    def encode_understanding(
        self,
        questions: Sequence[str],
        codes: Sequence[torch.Tensor | None],
        answer_length: int,
        system_prompt: str | None = None,
        answer_pads: int = 0,
    ) -> PaddedRows:
        """Rows of prompt + image + `<answer>` + `answer_length` masks + `</answer>` (+ `answer_pads` answer pads,
        as Lumina-DiMOO's VLMEvalKit wrapper lays out its one-token answers); `span_start` = first mask."""
        system = UNDERSTANDING_SYSTEM_PROMPT if system_prompt is None else system_prompt
        rows = [
            self.understanding_row(q, c, system, answer_length, answer_pads)
            for q, c in zip(questions, codes, strict=True)
        ]
        return pad_rows(rows, [len(r) - answer_length - 1 - answer_pads for r in rows], self.tokens.eos)

    def decode_answers(self, completion_ids: torch.Tensor) -> list[str]:
        """Answer tokens [N, L] -> text up to the first EOS / `</answer>` / answer pad, specials dropped."""
        stops = {self.tokens.eos, self.tokens.answer_end, self.tokens.answer_pad}
        texts = []
        for row in completion_ids.tolist():
            end = next((i for i, t in enumerate(row) if t in stops), len(row))
            texts.append(self.tokenizer.decode(row[:end], skip_special_tokens=True).strip())
        return texts


def masked_slots(input_ids: torch.Tensor, mask_id: int) -> torch.Tensor:
    """Positions [B, N] of the mask tokens of each row, in order (every row must hold the same count N)."""
    where = input_ids == mask_id
    counts = where.sum(1)
    if bool((counts != counts[0]).any()):
        raise ValueError(f"rows hold different numbers of masked slots ({counts.tolist()}); build them on one grid.")
    return where.nonzero()[:, 1].view(input_ids.shape[0], -1)
