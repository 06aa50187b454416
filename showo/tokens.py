"""Show-o's token layout, prompt templates and attention masks (showlab/Show-o `training/prompting_utils.py`).

Ids: the Phi text vocab, then `[PAD]` and nine task/segment tokens, then the image codes, then one mask token.
Masks are boolean [N, 1, L, L] (True = may attend) for transformers' 4D `attention_mask`; rows are left-padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

PAD_TOKEN = "[PAD]"
# Order of `UniversalPrompting`'s add_tokens call after [PAD]: fixes the ids (llm_vocab_size + 1 ...).
SPECIAL_TOKENS = ("<|soi|>", "<|eoi|>", "<|sov|>", "<|eov|>", "<|t2i|>", "<|mmu|>", "<|t2v|>", "<|v2v|>", "<|lvg|>")
NUM_NEW_SPECIAL_TOKENS = 1 + len(SPECIAL_TOKENS)
MMU_QUESTION_TEMPLATE = "USER: \n{question} ASSISTANT:"


@dataclass(frozen=True)
class ShowoVocab:
    """Token ids derived from the checkpoint config (`llm_vocab_size`, `codebook_size`) and the text bos/eos."""

    llm_vocab_size: int
    codebook_size: int
    bos_id: int  # <|sot|> (Phi: bos == eos == 50256)
    eos_id: int  # <|eot|>

    @property
    def pad_id(self) -> int:
        return self.llm_vocab_size

    def special(self, token: str) -> int:
        return self.llm_vocab_size + 1 + SPECIAL_TOKENS.index(token)

    @property
    def image_offset(self) -> int:
        return self.llm_vocab_size + NUM_NEW_SPECIAL_TOKENS

    @property
    def mask_id(self) -> int:
        return self.image_offset + self.codebook_size

    @property
    def vocab_size(self) -> int:
        return self.mask_id + 1


def t2i_ids(vocab: ShowoVocab, text_ids: Sequence[Sequence[int]], max_seq_length: int, image_ids: torch.Tensor):
    """`[PAD]* <|t2i|> <sot> text <eot> <|soi|> image <|eoi|>` per row, left-padded to `max_seq_length + 1` text
    tokens (truncated text keeps a final <eot>), as the original `t2i_gen_prompt`. `image_ids` [N, I] are vocab ids
    (mask ids for generation). An empty text is the CFG null prompt. Returns ids [N, max_seq_length + 3 + I]."""
    width = max_seq_length + 1
    rows = []
    for text in text_ids:
        text = list(text)
        body = text if text[:1] == [vocab.bos_id] else [vocab.bos_id] + text
        row = [vocab.special("<|t2i|>")] + body + [vocab.eos_id]
        row = [vocab.pad_id] * (width - len(row)) + row if len(row) <= width else row[: width - 1] + [vocab.eos_id]
        rows.append(row)
    soi = torch.full((len(rows), 1), vocab.special("<|soi|>"))
    eoi = torch.full((len(rows), 1), vocab.special("<|eoi|>"))
    return torch.cat([torch.tensor(rows), soi, image_ids.cpu(), eoi], dim=1)


def mmu_ids(vocab: ShowoVocab, image_ids: torch.Tensor, question_ids: Sequence[Sequence[int]]) -> torch.Tensor:
    """`<|mmu|> <|soi|> image <|eoi|> <sot> question` per row, left-padded with [PAD] to the longest row.
    `image_ids` [N, I] are vocab ids; returns [N, L]."""
    heads = [
        [vocab.special("<|mmu|>"), vocab.special("<|soi|>"), *img, vocab.special("<|eoi|>"), vocab.bos_id, *q]
        for img, q in zip(image_ids.tolist(), question_ids, strict=True)
    ]
    length = max(len(h) for h in heads)
    return torch.tensor([[vocab.pad_id] * (length - len(h)) + h for h in heads])


def _image_segment(ids: torch.Tensor, vocab: ShowoVocab) -> torch.Tensor:
    """[N, L] bool: positions from <|soi|> to <|eoi|> inclusive."""
    soi, eoi = ids == vocab.special("<|soi|>"), ids == vocab.special("<|eoi|>")
    return (soi.cumsum(1) > eoi.cumsum(1)) | soi | eoi


def omni_attention_mask(ids: torch.Tensor, vocab: ShowoVocab) -> torch.Tensor:
    """Show-o's t2i omni-attention (`create_attention_mask_predict_next`, rm_pad_in_image=True) as bool
    [N, 1, L, L]: text causal, image tokens see every non-pad token, no real token sees a pad (left pads)."""
    n, length = ids.shape
    pad = ids == vocab.pad_id  # [N, L]
    causal = torch.ones(length, length, dtype=torch.bool, device=ids.device).tril()
    mask = causal.expand(n, length, length).clone()  # pad rows keep causal (they only see earlier pads)
    real_rows = ~pad[:, :, None]
    mask &= ~(real_rows & pad[:, None, :])
    image = _image_segment(ids, vocab)
    mask[image] = ~pad[:, None, :].expand(n, length, length)[image]
    return mask[:, None]


def mmu_attention_mask(ids: torch.Tensor, vocab: ShowoVocab, pad: torch.Tensor | None = None) -> torch.Tensor:
    """Show-o's understanding mask (`create_attention_mask_for_mmu`) as bool [N, 1, L, L]: causal, and every query
    sees the whole prefix up to <|eoi|>; with left pads no real token sees a pad. Holds for answer tokens appended
    after the question (they are causal text). `pad` [N, L] bool marks the pads (default: ids == [PAD]); pass it
    when an answer may hold a sampled [PAD] id, which the original treats as an ordinary token."""
    n, length = ids.shape
    pad = ids == vocab.pad_id if pad is None else pad
    eoi = (ids == vocab.special("<|eoi|>")).int().argmax(1)  # [N]
    cols = torch.arange(length, device=ids.device)
    causal = torch.ones(length, length, dtype=torch.bool, device=ids.device).tril()
    mask = causal[None] | (cols[None, None, :] <= eoi[:, None, None])
    mask &= ~(~pad[:, :, None] & pad[:, None, :])
    mask[pad] = causal.expand(n, length, length)[pad]
    return mask[:, None]


def position_ids(ids: torch.Tensor, vocab: ShowoVocab, pad: torch.Tensor | None = None) -> torch.Tensor:
    """[N, L] positions that skip left pads, so a padded row gets its unpadded positions (the original runs
    understanding at batch 1, unpadded). `pad` as in `mmu_attention_mask`."""
    real = (ids != vocab.pad_id if pad is None else ~pad).long()
    return (real.cumsum(1) - 1).clamp(min=0)
