"""Helpers for the evaluation tests: small in-memory images, an MMMU folder in the hub's layout, and call counters
around the janus samplers."""

import io

import pandas as pd
import pytest
from PIL import Image


def _png_bytes(color: str = "red", size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def png():
    """`png(color, size)` -> PNG file bytes of a plain image."""
    return _png_bytes


@pytest.fixture
def mmmu_dir(tmp_path, png):
    def image(color, size=(40, 30)):
        return {"bytes": png(color, size), "path": f"{color}.png"}

    rows = [
        {
            "id": "validation_Art_Theory_1",
            "question": "Who painted <image 1>?",
            "options": "['Monet', 'Manet']",
            "answer": "B",
            "question_type": "multiple-choice",
            "image_1": image("red"),
        },
        {
            "id": "validation_Art_Theory_2",
            "question": "Which is older?",
            "options": "['<image 1>', '<image 2>']",
            "answer": "A",
            "question_type": "multiple-choice",
            "image_1": image("red", (20, 30)),
            "image_2": image("blue", (60, 60)),
        },
        {
            "id": "validation_Math_1",
            "question": "Solve <image 1>.",
            "options": "[]",
            "answer": "['3.5', '7/2']",
            "question_type": "open",
            "image_1": image("green"),
        },
    ]
    for subject in ("Art_Theory", "Math"):
        folder = tmp_path / "MMMU" / subject
        folder.mkdir(parents=True)
        frame = pd.DataFrame([r for r in rows if f"_{subject}_" in r["id"]])
        for n in range(1, 8):
            frame[f"image_{n}"] = frame.get(f"image_{n}", None)
        frame.to_parquet(folder / "validation-00000-of-00001.parquet")
    return tmp_path / "MMMU"


@pytest.fixture
def count_calls(monkeypatch):
    """`count_calls("sample_image_tokens")` wraps that janus function (as the Janus backbone calls it) and returns a
    list that grows per call."""
    import janus.backbone as janus

    def install(name: str) -> list:
        calls = []
        original = getattr(janus, name)

        def wrapped(*args, **kwargs):
            calls.append(getattr(args[1], "input_ids", args[1]).shape[0] if len(args) > 1 else None)  # rows
            return original(*args, **kwargs)

        monkeypatch.setattr(janus, name, wrapped)
        return calls

    return install
