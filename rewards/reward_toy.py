"""DEMO ONLY: `toy_geneval`, a deterministic GenEval-like image reward for the toy world of coloured shapes.

The prompt names a count, a colour and a shape ("a photo of two red circles"). The reward reads the decoded
pixels: every pixel is snapped to the nearest of the world's palette (background + the four shape colours),
the target-colour pixels are split into connected blobs, and three checks are averaged, each in [0, 1]:
- colour: the share of foreground (non-background) pixels that have the prompt's colour;
- count: 1 when the number of target-colour blobs equals the prompt's count, 1 / (1 + |error|) otherwise, 0 when
  there is none;
- shape: the share of those blobs whose silhouette is classified as the prompt's shape (fill ratio of the
  bounding box: square ~1, circle ~0.79, triangle and diamond ~0.5, told apart by where the mass sits).
Like GenEval it checks what is in the image, not how good it looks. It only understands the toy world.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from data_tools.toy_world import BACKGROUND, COLOR_RGB, COUNT_WORDS, SHAPES, WORLD_COLORS
from rewards.reward_understand import completion_text

__all__ = ["ToyTarget", "parse_toy_prompt", "toy_geneval"]

# Blobs smaller than this share of the image are decoder speckle, not objects.
MIN_BLOB_FRACTION = 0.008
# Fill ratio (blob area / bounding-box area) thresholds: square 1.0, circle pi/4, triangle and diamond 0.5.
SQUARE_FILL, CIRCLE_FILL = 0.88, 0.66
# A triangle (apex up) has 3x the area in the bottom half of its box as in the top half; a diamond 1x.
TRIANGLE_BOTTOM_RATIO = 1.7

_WORDS = {**{w: n for n, w in COUNT_WORDS.items()}, "a": 1, "an": 1}
_PROMPT_RE = re.compile(
    r"\b(?P<count>" + "|".join(_WORDS) + r")\s+(?P<color>" + "|".join(WORLD_COLORS) + r")\s+"
    r"(?P<shape>" + "|".join(SHAPES) + r")s?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ToyTarget:
    """What a toy prompt asks for."""

    count: int
    color: str
    shape: str


def parse_toy_prompt(prompt: str) -> ToyTarget | None:
    """`"... two red circles ..."` -> ToyTarget(2, "red", "circle"); None when the prompt is not a toy-world prompt."""
    match = _PROMPT_RE.search(prompt)
    if match is None:
        return None
    return ToyTarget(_WORDS[match["count"].lower()], match["color"].lower(), match["shape"].lower())


def _palette() -> torch.Tensor:
    """[1 + C, 3] in [0, 1]: the background, then `WORLD_COLORS` in order."""
    colours = [tuple(c / 255 for c in BACKGROUND)] + [COLOR_RGB[name] for name in WORLD_COLORS]
    return torch.tensor(colours, dtype=torch.float32)


def palette_labels(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> [N, H, W] int: 0 background, 1 + i for `WORLD_COLORS[i]` (nearest in RGB)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected a [N, 3, H, W] tensor in [-1, 1], got shape {tuple(images.shape)}")
    rgb = ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1)  # [N, H, W, 3]
    distances = (rgb.unsqueeze(-2) - _palette()).norm(dim=-1)  # [N, H, W, 1 + C]
    return distances.argmin(dim=-1).numpy()


def classify_shape(blob: np.ndarray) -> str:
    """The toy shape whose silhouette matches a boolean blob mask best (cropped to its bounding box inside)."""
    rows, cols = np.nonzero(blob)
    box = blob[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    fill = box.sum() / box.size
    if fill >= SQUARE_FILL:
        return "square"
    if fill >= CIRCLE_FILL:
        return "circle"
    half = box.shape[0] // 2
    top, bottom = box[:half].sum(), box[box.shape[0] - half :].sum()
    return "triangle" if bottom >= TRIANGLE_BOTTOM_RATIO * max(top, 1) else "diamond"


def score_image(labels: np.ndarray, target: ToyTarget) -> float:
    """Mean of the colour, count and shape checks for one [H, W] label map (see the module docstring)."""
    min_area = MIN_BLOB_FRACTION * labels.size
    foreground = labels > 0
    target_mask = labels == 1 + WORLD_COLORS.index(target.color)
    color = float(target_mask.sum() / foreground.sum()) if foreground.sum() >= min_area else 0.0
    components, n = ndimage.label(target_mask, structure=np.ones((3, 3)))
    blobs = [components == k for k in range(1, n + 1)]
    blobs = [b for b in blobs if b.sum() >= min_area]
    count = 1.0 / (1 + abs(len(blobs) - target.count)) if blobs else 0.0
    shape = sum(classify_shape(b) == target.shape for b in blobs) / len(blobs) if blobs else 0.0
    return (color + count + shape) / 3


def toy_geneval(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """DEMO ONLY reward in [0, 1] for `kwargs["images"]` ([N, 3, H, W] in [-1, 1]); None for non-toy prompts."""
    images = kwargs.get("images")
    if images is None:
        raise ValueError("images: toy_geneval needs images=Tensor[N, 3, H, W] in [-1, 1] (the decoded generations)")
    if len(images) != len(prompts):
        raise ValueError(f"images: got {len(images)} images for {len(prompts)} prompts; pass one image per prompt")
    targets = [parse_toy_prompt(completion_text(prompt)) for prompt in prompts]
    labels = palette_labels(images)
    return [None if t is None else score_image(lab, t) for lab, t in zip(labels, targets, strict=True)]
