"""MAGVIT-v2 image tokenizer as Show-o uses it: a conv encoder/decoder around a 13-bit lookup-free quantizer (LFQ).

Written for this project from the architecture of showlab/Show-o `models/modeling_magvitv2.py` (taming-style ResNet
blocks, GroupNorm(32), swish, one mid attention block; 16x down/up sampling). Parameter names follow the original
`showlab/magvitv2` checkpoint so its weights load as they are. The codebook is not learned: code c is the 13-bit
binary number whose bits are the signs of the 13 latent channels. No training losses (commitment/entropy) here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MagvitConfig:
    """Sizes of the encoder and decoder. Defaults are the released `showlab/magvitv2` (hard-coded in the original;
    its config.json carries no sizes, so any of these keys in config.json is this project's extension)."""

    ch: int = 128
    encoder_ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4)
    encoder_num_res_blocks: tuple[int, ...] = (4, 3, 4, 3, 4)
    decoder_ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    decoder_num_res_blocks: tuple[int, ...] = (4, 4, 3, 4, 3)
    z_channels: int = 13  # = code bits: codebook size 2**13 = 8192
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def codebook_size(self) -> int:
        return 2**self.z_channels

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.encoder_ch_mult) - 1)

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config.json") -> MagvitConfig:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        sizes = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
        config = cls(**sizes, extra={k: v for k, v in raw.items() if k not in known})
        for part in ("encoder", "decoder"):
            mult, blocks = getattr(config, f"{part}_ch_mult"), getattr(config, f"{part}_num_res_blocks")
            if len(mult) != len(blocks) or len(mult) < 1:
                raise ValueError(
                    f"{source}: {part}_ch_mult={list(mult)} and {part}_num_res_blocks={list(blocks)} must be "
                    "non-empty lists of the same length (one entry per resolution level)."
                )
        if len(config.encoder_ch_mult) != len(config.decoder_ch_mult):
            raise ValueError(f"{source}: encoder and decoder need the same number of levels (same down/upsampling).")
        return config

    def to_dict(self) -> dict:
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items() if k != "extra"}
        return self.extra | out


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """norm-swish-conv twice plus a (1x1 when the width changes) shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W positions, with 1x1-conv projections and a residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q, self.k, self.v = (nn.Conv2d(channels, channels, 1) for _ in range(3))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)
        q = self.q(normed).reshape(b, c, h * w).transpose(1, 2)  # [B, HW, C]
        k = self.k(normed).reshape(b, c, h * w)  # [B, C, HW]
        v = self.v(normed).reshape(b, c, h * w)  # [B, C, HW]
        weights = torch.softmax(torch.bmm(q, k) * c**-0.5, dim=2)  # [B, HW(query), HW(key)]
        out = torch.bmm(v, weights.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3x3 conv after zero-padding one pixel right and bottom (the asymmetric taming padding)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest 2x upsampling, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class MidBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """One resolution level: ResNet blocks, then (all but the last level) a resampler named `downsample`/`upsample`."""

    def __init__(self, widths: Sequence[int], resample: str | None):
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.attn = nn.ModuleList()  # the released sizes put no attention at any level (only in the middle)
        if resample == "down":
            self.downsample = Downsample(widths[-1])
        elif resample == "up":
            self.upsample = Upsample(widths[-1])


class Encoder(nn.Module):
    """[B, 3, H, W] in [-1, 1] -> latents [B, z, H/16, W/16]."""

    def __init__(self, config: MagvitConfig):
        super().__init__()
        ch, mult, blocks = config.ch, config.encoder_ch_mult, config.encoder_num_res_blocks
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        widths_in = [ch] + [ch * m for m in mult[:-1]]
        self.down = nn.ModuleList(
            Level([c_in] + [ch * m] * n, "down" if i < len(mult) - 1 else None)
            for i, (c_in, m, n) in enumerate(zip(widths_in, mult, blocks, strict=True))
        )
        top = ch * mult[-1]
        self.mid = MidBlock(top)
        self.norm_out = _norm(top)
        self.conv_out = nn.Conv2d(top, config.z_channels, 3, padding=1)
        self.quant_conv = nn.Conv2d(config.z_channels, config.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.conv_out(F.silu(self.norm_out(self.mid(h))))
        return self.quant_conv(h)


class Decoder(nn.Module):
    """Quantized latents [B, z, h, w] -> pixels [B, 3, 16h, 16w] (unclamped; ~[-1, 1])."""

    def __init__(self, config: MagvitConfig):
        super().__init__()
        ch, mult, blocks = config.ch, config.decoder_ch_mult, config.decoder_num_res_blocks
        top = ch * mult[-1]
        self.post_quant_conv = nn.Conv2d(config.z_channels, config.z_channels, 1)
        self.conv_in = nn.Conv2d(config.z_channels, top, 3, padding=1)
        self.mid = MidBlock(top)
        # Levels are stored low-to-high resolution index (up[0] = full resolution) and run from the top level down;
        # each level's input width is the output width of the level above it.
        widths_in = [ch * m for m in mult[1:]] + [top]
        self.up = nn.ModuleList(
            Level([c_in] + [ch * m] * n, "up" if i > 0 else None)
            for i, (c_in, m, n) in enumerate(zip(widths_in, mult, blocks, strict=True))
        )
        self.norm_out = _norm(ch * mult[0])
        self.conv_out = nn.Conv2d(ch * mult[0], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(self.post_quant_conv(z)))
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class LookupFreeQuantizer(nn.Module):
    """Sign quantization of each latent channel; code = the channels' bits read as a binary number (MSB first).

    `embedding` [2**bits, bits] (+-1 per bit) and `power_vals` [bits] are fixed buffers, stored in the original
    checkpoint, so they are kept as (persistent) buffers here too."""

    def __init__(self, bits: int):
        super().__init__()
        powers = 2 ** torch.arange(bits - 1, -1, -1)  # [bits], MSB first
        codes = torch.arange(2**bits)
        self.register_buffer("embedding", ((codes[:, None] // powers) % 2).float() * 2 - 1)  # [K, bits]
        self.register_buffer("power_vals", powers)

    def codes(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents [B, bits, h, w] -> codes [B, h*w] (row-major)."""
        bits = (latents > 0).to(self.power_vals.dtype)  # a latent of exactly 0 reads as bit 0, as in the original
        return (bits * self.power_vals[None, :, None, None]).sum(1).flatten(1)

    def lookup(self, codes: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Codes [B, h*w] -> quantized latents [B, bits, h, w]."""
        z = F.embedding(codes, self.embedding)  # [B, h*w, bits]
        return z.view(codes.shape[0], *grid, -1).permute(0, 3, 1, 2).contiguous()


class MagvitV2(nn.Module):
    """Encoder + LFQ + decoder; `encode` gives codes in [0, 2**z) row-major, `decode` pixels in about [-1, 1]."""

    def __init__(self, config: MagvitConfig | None = None):
        super().__init__()
        self.config = config or MagvitConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.quantize = LookupFreeQuantizer(self.config.z_channels)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, H, W] in [-1, 1] (H, W multiples of 16) -> codes [B, H/16 * W/16]."""
        return self.quantize.codes(self.encoder(pixels))

    def decode(self, codes: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        """Codes [B, h*w] -> pixels [B, 3, 16h, 16w]; `grid` None means a square grid."""
        if grid is None:
            side = int(round(codes.shape[1] ** 0.5))
            if side * side != codes.shape[1]:
                raise ValueError(f"{codes.shape[1]} image codes are not a square grid; pass grid=(h, w).")
            grid = (side, side)
        return self.decoder(self.quantize.lookup(codes, grid))
