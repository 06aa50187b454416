"""The multiple-choice format: questions written by `format_mcq` read back by `parse_options` (reward and schema)."""

import pytest

from data_tools.multiple_choice import MC_INSTRUCTION, format_mcq, option_letters, parse_options


def test_format_mcq_released_format():
    question = format_mcq("What colour?", ["red", "blue", "green", "yellow"])
    assert question == f"What colour?\nA. red\nB. blue\nC. green\nD. yellow\n{MC_INSTRUCTION}"
    assert option_letters(question) == ["A", "B", "C", "D"]
    assert parse_options(question) == {"A": "red", "B": "blue", "C": "green", "D": "yellow"}


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            f"What pattern is on the shirt?\nA. Stripes\nB. Dots\nC. Plaid\nD. Solid colour\n{MC_INSTRUCTION}",
            {"A": "Stripes", "B": "Dots", "C": "Plaid", "D": "Solid colour"},
        ),
        ("Q?\n(A) cat\n(B) dog", {"A": "cat", "B": "dog"}),
        ("Q?\nA) 3\nB) 4\nC) 5", {"A": "3", "B": "4", "C": "5"}),
        ("I. Introduction\nNo options here", {}),
        ("Q?\nA. only one", {}),
        ("Example:\nA. x\nB. y\nQuestion:\nA. cat\nB. dog\nC. bird", {"A": "cat", "B": "dog", "C": "bird"}),
        ("Q?\nA. cat\nC. skipped", {}),
        (
            "Which?\nOptions: A: a cat, B: a dog, sleeping, C: a bird",
            {"A": "a cat", "B": "a dog, sleeping", "C": "a bird"},
        ),
        ("Options: old\nWhich?\nOptions: A: red, B: blue,", {"A": "red", "B": "blue"}),  # the last block, no comma
        ("Which?\nOptions: A: red", {}),  # one option is no choice
        ("Which?\nOptions: A: ,red, B: blue", {"A": ",red", "B": "blue"}),
    ],
)
def test_parse_options(question, expected):
    assert parse_options(question) == expected
