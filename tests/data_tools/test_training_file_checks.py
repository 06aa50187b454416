"""`python -m data_tools.validate` and the training loader accept and reject the same lines (issue 25): UniRL self
rows, a huge image under `--skip_invalid`, a self row without its question."""

import json

import pytest
from PIL import Image

from data_tools.validate import main as validate_main
from data_tools.validate import validate_file
from open_r1.dataset import load_pair_dataset

QUESTION = "Colour?\nA. red\nB. blue\nAnswer with the option's letter from the given choices directly."
SELF_ROW = {"prompt": "a red apple", "question": QUESTION, "answer": "A", "tag": "colors"}


def _pair(image):
    return {
        "generate_ann": {"image_path": image, "prompt": "a red apple"},
        "understand_ann": {"image_path": image, "question": QUESTION, "answer": "A"},
    }


def _write(tmp_path, lines):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture
def images(tmp_path):
    Image.new("RGB", (16, 16), "red").save(tmp_path / "ok.png")
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "huge.png")  # "huge" once PIL's pixel limit is lowered
    return tmp_path


def test_validate_accepts_the_self_rows_training_accepts(tmp_path, images, capsys):
    path = _write(tmp_path, [_pair("ok.png"), SELF_ROW])
    assert len(load_pair_dataset(path)) == 2
    errors, counts = validate_file(path)
    assert errors == [] and counts == {"aligned": 1, "self": 1}
    assert validate_main([str(path)]) == 0
    assert "2 valid pair(s)" in capsys.readouterr().out


def test_a_self_row_without_question_is_named_as_missing_question(tmp_path, images):
    row = {k: v for k, v in SELF_ROW.items() if k != "question"}
    path = _write(tmp_path, [_pair("ok.png"), row])
    (error,) = validate_file(path)[0]
    assert "pairs.jsonl:2: question: missing" in error and "generate_ann" not in error
    with pytest.raises(ValueError, match=r"pairs\.jsonl:2: question: missing"):
        load_pair_dataset(path)


def test_a_decompression_bomb_is_a_named_bad_line_that_skip_invalid_drops(tmp_path, images, monkeypatch, capsys):
    # PIL refuses images above 2 * MAX_IMAGE_PIXELS (178 megapixels by default) with DecompressionBombError, which
    # is not an OSError; a lowered limit makes a 64x64 file such an image without writing 196 megapixels.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = _write(tmp_path, [_pair("ok.png"), _pair("huge.png")])
    assert validate_main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "pairs.jsonl:2: understand_ann.image_path:" in out and "too large" in out and "fix:" in out
    with pytest.raises(ValueError, match=r"pairs\.jsonl:2: .*too large"):
        load_pair_dataset(path)
    assert len(load_pair_dataset(path, skip_invalid=True)) == 1
