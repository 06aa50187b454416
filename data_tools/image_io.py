"""The one way the project opens an image: fully decoded, 8-bit RGB, high-bit-depth modes scaled correctly.

`Image.open(p).convert("RGB")` has two traps this avoids: PIL decodes lazily, so a truncated or corrupt
file fails later, wherever the pixels are first touched (mid-training step); and 16-bit greyscale PNGs
(mode `I;16`) are clipped to 255 by `convert`, so almost every pixel turns white (issue 10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# Integer modes whose pixel range is 16 bits: scaled by 255 / 65535 (= 1 / 257) to 8 bits.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class ImageDecodeError(ValueError):
    """An image file that cannot be opened and fully decoded; the message names the file and the fix."""


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB copy of `image`; 16-bit and 32-bit integer / float greyscale are rescaled, not clipped."""
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            # Float images conventionally hold [0, 1]; anything larger is taken as already 0..255.
            scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
        elif image.mode == "I":
            # Pillow opens some 16-bit PNGs as 32-bit "I"; values above 255 mean a 16-bit range.
            scale = 1.0 / 257.0 if values.size and values.max() > 255 else 1.0
        else:
            scale = 1.0 / 257.0
        grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")


def open_rgb(path: str | Path, draft_size: int | None = None) -> Image.Image:
    """Open, fully decode and convert the image at `path` to 8-bit RGB; raises `ImageDecodeError`.

    `draft_size` lets JPEG decode at a reduced scale (at least that many pixels a side): every byte is still
    read, so a truncated file still fails, at a fraction of the cost (used to check many files up front).
    """
    try:
        with Image.open(path) as image:
            if draft_size is not None:
                image.draft("RGB", (draft_size, draft_size))
            image.load()  # decode now: a truncated file raises here, not at first use
            return to_rgb(image)
    except FileNotFoundError as err:
        raise ImageDecodeError(f"image {str(path)!r} not found; fix: correct the path or the image root") from err
    except Image.DecompressionBombError as err:
        # Not an OSError: without this a huge image (e.g. 196 megapixels) escaped --skip_invalid (issue 25).
        raise ImageDecodeError(
            f"image {str(path)!r} is too large to decode safely ({err}); fix: downscale the file (training resizes "
            "every image to the model's input size anyway), or drop the sample"
        ) from err
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        # PIL raises OSError for truncated data, UnidentifiedImageError for unknown bytes, SyntaxError for
        # some malformed headers (e.g. PNG chunks), ValueError for impossible sizes.
        raise ImageDecodeError(
            f"image {str(path)!r} cannot be decoded ({type(err).__name__}: {err}); "
            "fix: re-export or re-download the file, or drop the sample"
        ) from err
