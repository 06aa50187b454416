"""Images <-> aMUSEd-VQ codes with diffusers' `VQModel`, as Lumina-DiMOO calls it (`utils/image_utils.py`).

Pixels enter in [0, 1] (Lumina uses `do_normalize=False`), the grid is H/16 x W/16 for the 5-level aMUSEd VQ.
Understanding images are resized deterministically (the original's "center" crop picks a random offset).
"""

from __future__ import annotations

import math

import torch
from diffusers import VQModel
from PIL import Image


def vq_scale(vq: VQModel) -> int:
    """Pixels per code along each side: 2 ** (levels - 1)."""
    return 2 ** (len(vq.config.block_out_channels) - 1)


def fit_size(width: int, height: int, scale: int, max_pixels: int) -> tuple[int, int]:
    """(w, h), multiples of `scale`, keeping the aspect ratio, shrunk to at most `max_pixels` (never grown)."""
    shrink = min(1.0, math.sqrt(max_pixels / (width * height)))
    return (max(scale, int(width * shrink) // scale * scale), max(scale, int(height * shrink) // scale * scale))


def image_to_pixels(image: Image.Image, scale: int, max_pixels: int) -> torch.Tensor:
    """A PIL image -> pixels [3, h, w] in [0, 1], resized (bicubic) to a grid of whole codes."""
    rgb = image.convert("RGB")
    size = fit_size(*rgb.size, scale, max_pixels)
    if size != rgb.size:
        rgb = rgb.resize(size, resample=Image.BICUBIC)
    data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(size[1], size[0], 3)
    return data.permute(2, 0, 1).float() / 255.0


@torch.no_grad()
def encode_codes(vq: VQModel, pixels: torch.Tensor) -> torch.Tensor:
    """Pixels [N, 3, H, W] in [0, 1] -> codes [N, H/s, W/s] in [0, codebook)."""
    param = next(vq.parameters())
    latents = vq.encode(pixels.to(param)).latents  # [N, C, h, w]
    indices = vq.quantize(latents)[2][2]  # [N * h * w]
    return indices.view(latents.shape[0], latents.shape[2], latents.shape[3])


def decode_codes(vq: VQModel, codes: torch.Tensor) -> torch.Tensor:
    """Codes [N, h, w] -> pixels [N, 3, h*s, w*s] in [0, 1]."""
    n, h, w = codes.shape
    shape = (n, h, w, vq.config.latent_channels)
    return vq.decode(codes.long(), force_not_quantize=True, shape=shape).sample.clip(0, 1)
