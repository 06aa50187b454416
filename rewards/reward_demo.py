"""DEMO ONLY: a colour-matching image reward for the CPU demo and the learning tests.

`demo_color` reads a colour word from the prompt ("a red apple") and rewards images whose mean colour
is close to it: 1 - ||mean_rgb - target_rgb|| / sqrt(3), in [0, 1]. It is cheap, deterministic,
continuous and learnable by a tiny random model in a few steps, which HPS v2.1 (a 1B-parameter CLIP) is
not. It says nothing about image quality: never use it to train or compare real models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch

from data_tools.toy_world import COLOR_RGB
from rewards.reward_understand import completion_text

__all__ = ["demo_color", "find_color", "mean_color_score"]

# The first colour word in the prompt is the target.
_COLOR_RE = re.compile(r"\b(" + "|".join(COLOR_RGB) + r")\b", re.IGNORECASE)


def find_color(prompt: str) -> str | None:
    """The first colour word of `prompt` (lowercase), or None."""
    match = _COLOR_RE.search(prompt)
    return match.group(1).lower() if match else None


def mean_color_score(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - distance between each image's mean colour and its target colour, normalised to [0, 1].

    images: [N, 3, H, W] in [-1, 1]; targets: [N, 3] RGB in [0, 1]. Returns [N] float32.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected a [N, 3, H, W] tensor in [-1, 1], got shape {tuple(images.shape)}")
    mean_rgb = ((images.float().clamp(-1, 1) + 1) / 2).mean(dim=(2, 3))  # [N, 3] in [0, 1]
    distance = (mean_rgb - targets.to(mean_rgb.device, torch.float32)).norm(dim=1)  # [N]
    return 1.0 - distance / math.sqrt(3.0)


def demo_color(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """DEMO ONLY reward: colour match between `kwargs["images"]` ([N,3,H,W] in [-1,1]) and the prompt's colour word.

    Rows whose prompt names no colour get None.
    """
    images = kwargs.get("images")
    if images is None:
        raise ValueError("images: demo_color needs images=Tensor[N, 3, H, W] in [-1, 1] (the decoded generations)")
    if len(images) != len(prompts):
        raise ValueError(f"images: got {len(images)} images for {len(prompts)} prompts; pass one image per prompt")
    colors = [find_color(completion_text(prompt)) for prompt in prompts]
    rows = [i for i, color in enumerate(colors) if color is not None]
    rewards: list[float | None] = [None] * len(prompts)
    if not rows:
        return rewards
    targets = torch.tensor([COLOR_RGB[colors[i]] for i in rows])  # [R, 3]
    scores = mean_color_score(torch.stack([images[i] for i in rows]), targets)
    for i, score in zip(rows, scores.tolist(), strict=True):
        rewards[i] = score
    return rewards
