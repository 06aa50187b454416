"""VQ decoding of image tokens: shapes from the config, range, PIL conversion, errors."""

import numpy as np
import pytest
import torch

from janus.decode import decode_image_tokens, to_pil
from janus.sampling import num_image_tokens


def _side(model) -> int:
    """Decoded image side: latent grid times the VQ decoder's upsampling (one x2 per extra channel level)."""
    vq = model.config.vq_config
    return vq.num_patches * 2 ** (len(vq.channel_multiplier) - 1)


def test_decode_shape_and_range(tiny_janus):
    model, _ = tiny_janus
    count, vocab = num_image_tokens(model), model.config.vq_config.num_embeddings
    tokens = torch.randint(0, vocab, (3, count), generator=torch.Generator().manual_seed(0))
    images = decode_image_tokens(model, tokens)
    assert images.shape == (3, 3, _side(model), _side(model))
    assert images.dtype == torch.float32
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    assert images.std() > 0  # not a constant image
    assert not torch.equal(images[0], images[1])  # different tokens decode to different pixels


def test_decode_rejects_wrong_token_count(tiny_janus):
    model, _ = tiny_janus
    with pytest.raises(ValueError, match="image tokens"):
        decode_image_tokens(model, torch.zeros(1, num_image_tokens(model) + 1, dtype=torch.long))


def test_to_pil_maps_like_the_original_script():
    # (x + 1) / 2 * 255 clipped, truncated to uint8: -1 -> 0, 0 -> 127, 1 -> 255, out of range clipped.
    values = torch.tensor([-1.0, 0.0, 1.0, 2.0, -3.0, 0.5]).view(1, 1, 2, 3).expand(2, 3, 2, 3).clone()
    images = to_pil(values)
    assert len(images) == 2 and images[0].mode == "RGB" and images[0].size == (3, 2)
    array = np.asarray(images[0])
    assert array[..., 0].tolist() == [[0, 127, 255], [255, 0, 191]]


def test_to_pil_rejects_wrong_layout():
    with pytest.raises(ValueError, match="N, 3, H, W"):
        to_pil(torch.zeros(2, 8, 8, 3))
