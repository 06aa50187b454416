"""Toy UniRL rows (scripts/make_toy_unirl_rows.py, `make demo-unirl`): every question is decided by its prompt."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from make_toy_unirl_rows import main, toy_rows  # noqa: E402

from data_tools.multiple_choice import parse_options  # noqa: E402
from data_tools.unirl_rows import parse_self_row  # noqa: E402

WORDS = {"a": "1", "two": "2", "three": "3", "four": "4"}


def _gold_text(row) -> str:
    return parse_options(row.question)[row.answer]


def test_toy_rows_ask_what_the_prompt_says_and_are_deterministic():
    rows = toy_rows(60, seed=0, kinds=("counting", "colors", "shape"))
    assert rows == toy_rows(60, seed=0, kinds=("counting", "colors", "shape")) and rows != toy_rows(60, seed=1)
    assert {row.tag for row in rows} == {"counting", "colors", "shape"}  # position is not in a prompt
    for row in rows:
        parse_self_row(row.to_dict(), "row:1")  # a valid self row (letter among the options)
        count, color, shape = re.fullmatch(r"a photo of (\w+) (\w+) (\w+?)s?", row.prompt).groups()
        expected = {"counting": WORDS[count], "colors": color, "shape": shape}[row.tag]
        assert _gold_text(row) == expected, row


def test_default_kinds_leave_out_shape_and_unknown_kinds_are_refused(tmp_path, capsys):
    rows = toy_rows(60, seed=0)
    assert {row.tag for row in rows} == {"counting", "colors"}  # the toy VQ cannot draw a readable shape
    assert len(rows) == 60
    with pytest.raises(ValueError, match="position"):
        toy_rows(10, seed=0, kinds=("position",))
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "rows.jsonl"), "--kinds", "colour"])
    assert "--kinds" in capsys.readouterr().err
    assert not (tmp_path / "rows.jsonl").exists()
    assert main(["--out", str(tmp_path / "rows.jsonl"), "--num", "5", "--kinds", "shape"]) == 0
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert len(lines) == 5 and all('"tag": "shape"' in line for line in lines)
