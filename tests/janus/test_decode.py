"""VQ decoding of image tokens (shapes from the config, range, PIL conversion, errors) and the rollout CLIs."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from janus.decode import decode_image_tokens, to_pil
from janus.forward import num_image_tokens


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


def _load_script(name: str):
    """Import scripts/<name>.py as a module (scripts are not a package)."""
    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"script_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_images_cli_writes_pngs_and_metadata(tiny_janus_path, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a red apple"}\n\n{"prompt": "a blue car"}\n', encoding="utf-8")
    out = tmp_path / "out"
    argv = ["--model_path", str(tiny_janus_path), "--prompts", str(prompts), "--out_dir", str(out)]
    _load_script("generate_images").main(argv + ["--num_images_per_prompt", "2", "--batch_size", "3", "--seed", "1"])
    records = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [(r["prompt_index"], r["sample_index"]) for r in records] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert records[2]["prompt"] == "a blue car"
    sizes = {Image.open(out / r["file"]).size for r in records}
    assert len(sizes) == 1 and next(iter(sizes))[0] > 1
    # Per-image seeds: another --batch_size draws the same PNGs.
    other = tmp_path / "other"
    argv[-1] = str(other)
    _load_script("generate_images").main(argv + ["--num_images_per_prompt", "2", "--batch_size", "4", "--seed", "1"])
    assert [(other / r["file"]).read_bytes() for r in records] == [(out / r["file"]).read_bytes() for r in records]


def test_answer_questions_cli_adds_answers(tiny_janus_path, tmp_path):
    Image.new("RGB", (40, 24), (200, 30, 30)).save(tmp_path / "red.png")
    questions = tmp_path / "questions.jsonl"
    lines = [{"id": 7, "image_path": "red.png", "question": "What color is it?"}]
    lines.append({"id": 8, "image_path": str(tmp_path / "red.png"), "question": "Is it a car?"})
    questions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    output = tmp_path / "answers.jsonl"
    argv = ["--model_path", str(tiny_janus_path), "--input", str(questions), "--output", str(output)]
    _load_script("answer_questions").main(argv + ["--max_new_tokens", "5"])
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in records] == [7, 8]
    assert all(isinstance(r["answer"], str) and r["question"] for r in records)


def test_generate_images_cli_rejects_unknown_prompt_format(tmp_path):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("a red apple\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\.txt"):
        _load_script("generate_images").read_prompts(prompts)
