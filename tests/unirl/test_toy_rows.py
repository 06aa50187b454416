"""Toy UniRL rows (scripts/make_toy_unirl_rows.py, `make demo-unirl`): every question is decided by its prompt."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from make_toy_unirl_rows import toy_rows  # noqa: E402

from data_tools.unirl_rows import parse_self_row  # noqa: E402
from rewards.reward_understand import parse_options  # noqa: E402

WORDS = {"a": "1", "two": "2", "three": "3", "four": "4"}


def _gold_text(row) -> str:
    return parse_options(row.question)[row.answer]


def test_toy_rows_ask_what_the_prompt_says_and_are_deterministic():
    rows = toy_rows(60, seed=0)
    assert rows == toy_rows(60, seed=0) and rows != toy_rows(60, seed=1)
    assert {row.tag for row in rows} == {"counting", "colors", "shape"}  # position is not in a prompt
    for row in rows:
        parse_self_row(row.to_dict(), "row:1")  # a valid self row (letter among the options)
        count, color, shape = re.fullmatch(r"a photo of (\w+) (\w+) (\w+?)s?", row.prompt).groups()
        expected = {"counting": WORDS[count], "colors": color, "shape": shape}[row.tag]
        assert _gold_text(row) == expected, row
