"""The sequences the parity fixtures use, in each original's layout (small vocabularies), and their `Canvas`es.

The fixture builder passes the raw ids to the original samplers; the tests build the same canvases for ours.
"""

from __future__ import annotations

import torch

from backbones.masked_diffusion import Canvas, TokenSpace

# Lumina-DiMOO image: text ids [0, 24), image codes 24 + [0, 16); mask 20, end-of-row 21 (126336 / 126084 there).
LUMINA = {"text_vocab": 24, "codebook": 16, "mask": 20, "newline": 21, "height": 3, "width": 4}
LUMINA_VOCAB = 40
LUMINA_PREFIX = [3, 4, 5, 6, 7]
LUMINA_UNCOND_PREFIX = [8, 9, 10]
# Show-o image: llm vocab 20 + 4 specials, codes 24 + [0, 16), mask = last id 40; max_seq_length 5.
SHOWO = {"llm_vocab": 20, "specials": 4, "codebook": 16, "mask": 40, "tokens": 12, "max_seq_length": 5}
SHOWO_VOCAB = 41
SHOWO_COND_PREFIX = [21, 0, 5, 6, 7, 8]
SHOWO_UNCOND_PREFIX = [21, 0, 0, 0, 1, 2]
# LLaDA text: vocab 40, mask 39, a 6-token prompt, 8 answer slots, one trailing token.
TEXT = {"vocab": 40, "mask": 39, "prompt": [3, 4, 5, 6, 7, 8], "gen_length": 8, "trailing": [9]}


def lumina_image_ids() -> tuple[torch.Tensor, torch.Tensor, int]:
    """(cond ids [1, L], uncond prefix [1, 3], code_start) as Lumina-DiMOO's t2i script lays them out."""
    row = [LUMINA["mask"]] * LUMINA["width"] + [LUMINA["newline"]]
    ids = LUMINA_PREFIX + [22, 23] + row * LUMINA["height"] + [1, 2]
    return torch.tensor([ids]), torch.tensor([LUMINA_UNCOND_PREFIX]), len(LUMINA_PREFIX) + 2


def lumina_image_canvas(rows: int = 1) -> tuple[Canvas, TokenSpace]:
    ids, uncond_prefix, code_start = lumina_image_ids()
    uncond = torch.cat([uncond_prefix, ids[:, code_start - 2 :]], 1)
    canvas = canvas_from_masks(ids.repeat(rows, 1), uncond.repeat(rows, 1), LUMINA["mask"])
    return canvas, TokenSpace(LUMINA["mask"], offset=LUMINA["text_vocab"], size=LUMINA["codebook"])


def showo_image_ids() -> tuple[torch.Tensor, torch.Tensor]:
    """(cond ids [1, L], uncond ids [1, L]) as Show-o's t2i prompting lays them out."""
    tail = [22] + [SHOWO["mask"]] * SHOWO["tokens"] + [23]
    return torch.tensor([SHOWO_COND_PREFIX + tail]), torch.tensor([SHOWO_UNCOND_PREFIX + tail])


def showo_image_canvas(rows: int = 1) -> tuple[Canvas, TokenSpace]:
    cond, uncond = showo_image_ids()
    canvas = canvas_from_masks(cond.repeat(rows, 1), uncond.repeat(rows, 1), SHOWO["mask"])
    return canvas, TokenSpace(SHOWO["mask"], offset=SHOWO["llm_vocab"] + SHOWO["specials"], size=SHOWO["codebook"])


def text_ids() -> torch.Tensor:
    """Prompt + gen_length masks + a trailing token [1, L]; the answer starts at len(prompt)."""
    return torch.tensor([TEXT["prompt"] + [TEXT["mask"]] * TEXT["gen_length"] + TEXT["trailing"]])


def text_canvas(rows: int = 1) -> tuple[Canvas, TokenSpace]:
    ids = text_ids().repeat(rows, 1)
    # LLaDA's text CFG masks every prompt (non-mask) token in the unconditional branch.
    uncond = torch.full_like(ids, TEXT["mask"])
    return canvas_from_masks(ids, uncond, TEXT["mask"]), TokenSpace(TEXT["mask"])


def canvas_from_masks(ids: torch.Tensor, uncond: torch.Tensor, mask_id: int) -> Canvas:
    """Slots = the mask positions of `ids`; the uncond slots sit at the same distance from the sequence end (both
    branches share the tail after their prefixes)."""
    slots = torch.stack([(row == mask_id).nonzero()[:, 0] for row in ids])  # [B, N]
    tail = ids.shape[1] - slots  # distance from the end: the tail is shared by both branches
    return Canvas(ids=ids, slots=slots, uncond_ids=uncond, uncond_slots=uncond.shape[1] - tail)
