"""The port against the ORIGINAL Lumina-DiMOO code: logits, sequences, VQ codes and pixels on the tiny checkpoint.

The expected values were produced by `fixtures/build_parity.py` running Alpha-VLLM/Lumina-DiMOO itself (its own venv:
transformers 4.46.2, diffusers 0.34.0) on the checkpoint `lumina_dimoo.tiny` builds with seed 0; see parity.json.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lumina_dimoo.attention import dimoo_logits
from lumina_dimoo.processor import DimooProcessor
from lumina_dimoo.tokens import DimooTokens, image_block
from lumina_dimoo.vq import decode_codes, encode_codes

FIXTURES = Path(__file__).parent / "fixtures"
T = DimooTokens()


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(FIXTURES / "parity.npz")), json.loads((FIXTURES / "parity.json").read_text())


def test_the_fixture_was_built_on_this_tiny_checkpoint(tiny_dimoo_path, expected):
    for name, digest in expected[1]["checkpoint_sha256"].items():
        assert hashlib.sha256((tiny_dimoo_path / name).read_bytes()).hexdigest() == digest, (
            f"{name} of the tiny checkpoint changed: rebuild the fixtures with tests/lumina_dimoo/fixtures/build_parity.py"
        )


def our_image_codes(model, data) -> torch.Tensor:
    pixels = torch.from_numpy(data["vq_image"]).permute(2, 0, 1).float()[None] / 255  # [1, 3, H, W] in [0, 1]
    return encode_codes(model.vqvae, pixels)[0]  # [h, w]


def test_vq_codes_with_row_tokens_equal_the_original(tiny_dimoo, expected):
    data = expected[0]
    assert image_block(our_image_codes(tiny_dimoo[0], data), T) == data["vq_tokens"].tolist()


def test_decoded_pixels_equal_the_original(tiny_dimoo, expected):
    data = expected[0]
    codes = torch.tensor([t - T.image_offset for t in data["vq_tokens"] if t >= T.image_offset])
    h, w = data["vq_image"].shape[0] // 16, data["vq_image"].shape[1] // 16
    with torch.no_grad():
        pixels = decode_codes(tiny_dimoo[0].vqvae, codes.view(1, h, w))[0]  # [3, H, W] in [0, 1]
    ours = (pixels.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(ours, data["vq_pixels"])


def test_understanding_sequence_equals_the_original(tiny_dimoo, expected):
    data, meta = expected
    processor = DimooProcessor(tiny_dimoo[1], T, image_grid=tuple(meta["image_grid"]))
    codes = our_image_codes(tiny_dimoo[0], data)
    batch = processor.encode_understanding(["What is in the image?"], [codes], answer_length=6)
    assert batch.input_ids[0].tolist() == data["mmu_ids"].tolist()
    assert int(batch.span_start[0]) == meta["mmu_answer_start"]


def test_generation_sequences_equal_the_original(tiny_dimoo, expected):
    data, meta = expected
    processor = DimooProcessor(tiny_dimoo[1], T, image_grid=tuple(meta["image_grid"]))
    rows = processor.encode_generation(["a red apple on a table"])
    assert rows.cond.input_ids[0].tolist() == data["gen_cond_ids"].tolist()
    # The original's CFG branch: the unconditional prompt + the conditional row from `<answer>` on.
    assert rows.uncond.input_ids[0].tolist() == data["gen_uncond_ids"].tolist() + processor.generation_tail()


def test_logits_equal_the_original(tiny_dimoo, expected):
    data = expected[0]
    ids = torch.from_numpy(data["mmu_ids"])[None]
    with torch.no_grad():
        logits = dimoo_logits(tiny_dimoo[0], ids, torch.ones_like(ids))[0]  # [L, V]
    columns = torch.from_numpy(data["logit_columns"])
    torch.testing.assert_close(logits[:, columns], torch.from_numpy(data["mmu_logits"]), rtol=0, atol=1e-6)
    assert logits.argmax(-1).tolist() == data["mmu_argmax"].tolist()
