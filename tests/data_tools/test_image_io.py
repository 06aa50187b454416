"""`data_tools.image_io`: 16-bit images scaled like 8-bit ones wherever images are opened; corrupt files named."""

import numpy as np
import pytest
import torch
from PIL import Image

from data_tools.features import EncoderConfig, compute_features
from data_tools.image_io import ImageDecodeError, open_rgb
from open_r1.trainer.rollout import load_rgb


@pytest.fixture
def grey_pair(tmp_path):
    """The same greyscale gradient saved as 8-bit (mode L) and as 16-bit (mode I;16, values x 257)."""
    pixels = np.add.outer(np.arange(32), np.arange(32)).astype(np.uint8) * 4  # [H, W] in 0..248
    Image.fromarray(pixels, mode="L").save(tmp_path / "grey8.png")
    Image.fromarray(pixels.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    return tmp_path / "grey8.png", tmp_path / "grey16.png"


def test_sixteen_bit_png_matches_its_eight_bit_version(grey_pair):
    eight, sixteen = (np.asarray(open_rgb(p)) for p in grey_pair)
    np.testing.assert_array_equal(sixteen, eight)
    # What `.convert("RGB")` alone gives: nearly everything clipped to white.
    assert np.asarray(Image.open(grey_pair[1]).convert("RGB")).mean() > 240 > eight.mean()


def test_rollouts_features_and_processor_see_the_same_pixels(grey_pair, tiny_janus):
    eight, sixteen = load_rgb([str(p) for p in grey_pair])
    np.testing.assert_array_equal(np.asarray(sixteen), np.asarray(eight))
    config = EncoderConfig(random_init=True, image_size=32, batch_size=2)
    feats = compute_features([str(p) for p in grey_pair], config)
    np.testing.assert_allclose(feats[1], feats[0], atol=1e-6)
    processor = tiny_janus[1]
    with Image.open(grey_pair[0]) as a, Image.open(grey_pair[1]) as b:
        pixels = processor.preprocess_images([a, b])
    torch.testing.assert_close(pixels[1], pixels[0])


@pytest.mark.parametrize("kind", ["truncated", "empty", "noise", "missing"])
def test_corrupt_files_raise_a_named_error(tmp_path, kind):
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    path = tmp_path / f"{kind}.png"
    data = {"truncated": good.read_bytes()[:3000], "empty": b"", "noise": bytes(range(256)) * 8}.get(kind)
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(ImageDecodeError, match=rf"{kind}\.png.*fix:"):
        open_rgb(path)
