"""VQ decoding of generated image tokens to pixels in [-1, 1], and to PIL images as the original inference does.

The grid (24 x 24 for Janus-Pro) and the output size (384 px) come from the loaded model's VQ config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from janus.forward import num_image_tokens

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration


@torch.no_grad()
def decode_image_tokens(model: JanusForConditionalGeneration, tokens: torch.LongTensor) -> torch.Tensor:
    """VQ-decode image tokens [N, I] into float32 pixels [N, 3, H, W] clamped to [-1, 1]."""
    expected = num_image_tokens(model)
    if tokens.ndim != 2 or tokens.shape[1] != expected:
        raise ValueError(
            f"tokens has shape {tuple(tokens.shape)}; expected [N, {expected}] image tokens from sample_image_tokens."
        )
    # vqmodel.decode reshapes to the (num_patches x num_patches) latent grid, L2-normalises the codebook entries
    # and runs post_quant_conv + decoder.
    pixels = model.model.vqmodel.decode(tokens.to(model.device))  # [N, 3, H, W]
    return pixels.float().clamp(-1.0, 1.0)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """[N, 3, H, W] in [-1, 1] -> RGB PIL images, mapped to uint8 like the original script: (x + 1) / 2 * 255, clipped."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images has shape {tuple(images.shape)}; expected [N, 3, H, W] in [-1, 1].")
    array = images.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # [N, H, W, 3]
    array = np.clip((array + 1.0) / 2.0 * 255.0, 0, 255).astype(np.uint8)
    return [Image.fromarray(image) for image in array]


__all__ = ["decode_image_tokens", "to_pil"]
