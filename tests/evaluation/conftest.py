"""Helpers for the evaluation tests: small in-memory images and call counters around the janus samplers."""

import io

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
