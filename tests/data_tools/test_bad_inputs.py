"""Hostile inputs (issue 10): corrupt images, non-UTF-8 bytes, malformed lines, duplicate ids. Every problem is
reported as `file:line: field`, or dropped and counted with `--skip-invalid`; nothing crashes with a raw error."""

import json

import numpy as np
import pytest
from PIL import Image

from data_tools.build_pairs import main as build_main
from data_tools.jsonl import load_generation, load_understanding
from data_tools.validate import main as validate_main

QUESTION = "Colour?\nA. red\nB. blue\nAnswer with the option's letter from the given choices directly."


@pytest.fixture
def folder(tmp_path):
    """Four good 48x48 images and the three corrupt files a crashed copy or a bad download leaves."""
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / f"ok{i}.png")
    whole = (tmp_path / "ok0.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "noise.png").write_bytes(bytes(range(256)) * 8)
    return tmp_path


def _write(path, lines: list[dict | bytes]):
    path.write_bytes(b"".join(x if isinstance(x, bytes) else json.dumps(x).encode() + b"\n" for x in lines))
    return path


def _und(image, i):
    return {"id": f"u{i}", "image_path": image, "question": QUESTION, "answer": "A"}


def _gen(image, i):
    return {"id": f"g{i}", "image_path": image, "prompt": f"a photo of thing {i}"}


def test_validate_decodes_every_image(folder, capsys):
    pair = {"similarity": 0.7, "generate_ann": {"image_path": "ok1.png", "prompt": "p"},
            "understand_ann": {"image_path": "ok0.png", "question": QUESTION, "answer": "A"}}  # fmt: skip
    lines = [pair]
    for name in ("truncated.png", "empty.png", "noise.png"):
        lines.append(json.loads(json.dumps(pair)))
        lines[-1]["understand_ann"]["image_path"] = name
    lines.append(b'{"similarity": 0.7, "caf\xe9": 1}\n')  # latin-1 bytes
    lines.append(b"{not json\n")
    lines.append(pair)
    path = _write(folder / "pairs.jsonl", lines)
    assert validate_main([str(path)]) == 1
    out = capsys.readouterr().out
    for line, name in ((2, "truncated.png"), (3, "empty.png"), (4, "noise.png")):
        assert f"{path}:{line}: understand_ann.image_path: image '{folder / name}' cannot be decoded" in out
    assert f"{path}:5: <line>: not valid UTF-8 (byte 0xe9" in out and "fix: re-encode" in out
    assert f"{path}:6: <line>: invalid JSON" in out  # the scan goes on after the bad lines
    assert "2 valid pair(s)" in out and "5 error(s)" in out


@pytest.mark.parametrize("loader", [load_understanding, load_generation])
def test_input_loaders_report_or_skip_every_bad_line(folder, loader):
    make = _und if loader is load_understanding else _gen
    lines = [make("ok0.png", 0), make("truncated.png", 1), b"\xff\xfe{}\n", b"[1, 2\n", make("noise.png", 4),
             make("ok1.png", 5), make("ok2.png", 5)]  # fmt: skip
    path = _write(folder / "in.jsonl", lines)
    with pytest.raises(ValueError) as err:
        loader(path)
    message = str(err.value)
    assert message.startswith("5 invalid line(s)")
    assert f"{path}:2: image_path: image '{folder / 'truncated.png'}' cannot be decoded" in message
    assert f"{path}:3: <line>: not valid UTF-8" in message and f"{path}:4: <line>: invalid JSON" in message
    assert f"{path}:5: image_path:" in message
    assert f"{path}:7: id: duplicate id '{make('', 5)['id']}' (first at {path}:6)" in message
    samples, report = loader(path, skip_invalid=True)
    assert [s.sample_id for s in samples] == [make("", 0)["id"], make("", 5)["id"]] and len(report.errors) == 5


def test_build_pairs_skip_invalid_drops_corrupt_images_and_malformed_lines(folder, tmp_path):
    und = _write(folder / "und.jsonl", [_und("ok0.png", 0), b"{oops\n", _und("truncated.png", 2), _und("ok1.png", 3)])
    gen = _write(folder / "gen.jsonl", [_gen("ok2.png", 0), _gen("empty.png", 1), b"\xe9\n", _gen("ok3.png", 3)])
    args = ["--understanding", str(und), "--generation", str(gen), "--work-dir", str(tmp_path / "work"),
            "--random-init", "--image-size", "32", "--stage", "features"]  # fmt: skip
    with pytest.raises(SystemExit) as err:
        build_main(args)
    assert f"{und}:2: <line>: invalid JSON" in str(err.value) and f"{und}:3: image_path" in str(err.value)
    build_main(args + ["--skip-invalid"])  # the features stage runs on the 2 + 2 good images
    (features,) = (tmp_path / "work" / "features").glob("*/features.npy")
    assert np.load(features).shape == (4, 2048)


def test_fast_check_still_catches_a_truncated_jpeg(tmp_path):
    from data_tools.schema import undecodable_images

    pixels = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "whole.jpg", quality=90)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * 0.9)])  # reduced-scale decode still reads every byte
    bad = undecodable_images([str(tmp_path / "whole.jpg"), str(tmp_path / "cut.jpg")] * 2)
    assert list(bad) == [str(tmp_path / "cut.jpg")] and "truncated" in bad[str(tmp_path / "cut.jpg")]
