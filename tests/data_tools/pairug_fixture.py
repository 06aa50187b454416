"""A small synthetic PairUG in the released JSONL layout (real PNG/JPEG/RGBA-PNG files), for the BAGEL export tests."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

MC = "Answer with the option's letter from the given choices directly."
PAIRS = 48  # 3 lines per worker at 8 ranks x 2 workers: every line is read, none is left over
ALIGNED_EVERY = 4  # pairs 0, 4, 8, ... are aligned (one image on both sides)
# Sizes and formats on purpose: square, tall, wide, and an RGBA PNG (BAGEL pastes alpha on white).
IMAGE_SHAPES = [
    ((48, 48), "png", "RGB"),
    ((30, 70), "jpg", "RGB"),
    ((64, 40), "png", "RGBA"),
    ((50, 50), "jpg", "RGB"),
]


def question(i: int) -> str:
    return f"Scene {i}: what colour is the largest shape?\nA. red\nB. green\nC. blue\n{MC}"


def _write_image(path: Path, i: int, seed: int) -> None:
    (w, h), _, mode = IMAGE_SHAPES[i % len(IMAGE_SHAPES)]
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (h, w, len(mode)), dtype=np.uint8)
    Image.fromarray(pixels).save(path)  # [h, w, 3] -> RGB, [h, w, 4] -> RGBA


def make_pairug(folder: Path, n: int = PAIRS) -> tuple[Path, list[dict]]:
    """`n` pairs (every ALIGNED_EVERY-th aligned, the rest retrieved) with relative image paths under `folder`."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        ext = IMAGE_SHAPES[i % len(IMAGE_SHAPES)][1]
        gen_path, und_path = f"images/g{i}.{ext}", f"images/u{i}.{ext}"
        _write_image(folder / gen_path, i, seed=2 * i)
        aligned = i % ALIGNED_EVERY == 0
        if aligned:
            und_path = gen_path
        else:
            _write_image(folder / und_path, i, seed=2 * i + 1)
        gen = {"image_path": gen_path, "prompt": f"a photo of scene {i}, a red square", "tag": "geneval_train"}
        und = {"image_path": und_path, "question": question(i), "answer": "ABC"[i % 3], "tag": "counting"}
        if aligned:  # an aligned pair's sides are one completed quadruple: every field on both
            gen, und = {**gen, "question": und["question"], "answer": und["answer"]}, {**und, "prompt": gen["prompt"]}
        records.append({"similarity": 1.0 if aligned else round(0.6 + i / 1000, 3),
                        "generate_ann": gen, "understand_ann": und,
                        "pair_type": "aligned" if aligned else "retrieved"})  # fmt: skip
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path, records
