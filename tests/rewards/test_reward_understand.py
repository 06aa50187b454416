"""Table-driven tests of answer parsing, multiple-choice accuracy, open-ended matching and the format reward."""

import pytest

from rewards.reward_understand import (
    accuracy_reward,
    answer_span,
    completion_text,
    extract_choice,
    format_reward,
    gold_letter,
    normalize_answer,
    open_ended_match,
)

OPTIONS = ["Stripes", "Dots", "Plaid", "Solid colour"]
QUESTION = (
    "What pattern is on the shirt?\nA. Stripes\nB. Dots\nC. Plaid\nD. Solid colour\n"
    "Answer with the option's letter from the given choices directly."
)

# (completion, options, expected letter)
CHOICE_CASES = [
    # the formats the issue lists
    ("<answer>B</answer>", None, "B"),
    ("B", None, "B"),
    ("B.", None, "B"),
    ("(B)", None, "B"),
    ("B. Stripes", None, "B"),
    ("Answer: B", None, "B"),
    ("The answer is (b)", None, "B"),
    ("Dots", OPTIONS, "B"),
    ("<think>The shirt has dots, not stripes.</think><answer>B</answer>", None, "B"),
    # case, wrappers and phrasing
    ("b", None, "B"),
    ("b)", None, "B"),
    ("  c  ", None, "C"),
    ("[D]", None, "D"),
    ("**C**", None, "C"),
    ("Option C", None, "C"),
    ("option c.", None, "C"),
    ("the correct answer is C)", None, "C"),
    ("Final answer: **D**", None, "D"),
    ("**Answer:** C", None, "C"),
    ("I choose option B", None, "B"),
    ("The correct option is D.", None, "D"),
    ("\\boxed{C}", None, "C"),
    ("$\\boxed{\\text{A}}$", None, "A"),
    ("<answer> c </answer>", None, "C"),
    ("<answer>(C) Plaid</answer>", None, "C"),
    ("<answer>The answer is Dots</answer>", OPTIONS, "B"),
    ("The shirt has dots, so it is B.", None, "B"),
    ("After looking closely:\nC", None, "C"),
    ("The image shows (C) clearly", None, "C"),
    ("<think>x</think>\n<answer>A", None, "A"),  # unclosed answer tag (cut at max length)
    ("A.", None, "A"),
    ("a.", None, "A"),
    ("A", None, "A"),
    # option text only
    ("stripes.", OPTIONS, "A"),
    ("It is a solid colour shirt", OPTIONS, "D"),
    ("dark red", ["red", "dark red", "blue"], "B"),  # most specific option wins
    ("Plaid", {"A": "Stripes", "B": "Plaid"}, "B"),
    # traps: articles and pronouns are not letters
    ("A cat sits on the mat.", None, None),
    ("A is correct because the shirt has stripes.", None, "A"),
    ("B is correct.", None, "B"),
    ("**B. Dots**", None, "B"),
    ("I would say B", None, "B"),
    ("Answer: B\nExplanation: option A is wrong.", None, "B"),
    ("A cat sits on the mat, so the answer is C.", None, "C"),
    ("the answer is a dog", None, None),
    ("I think so", None, None),
    ("Option A shows stripes. Option B shows dots. Therefore the answer is D.", None, "D"),
    # traps: two different letters -> no credit
    ("A and B", None, None),
    ("A or C", None, None),
    ("Answer: A, C", None, None),
    ("The answer is A. Wait, the answer is C.", None, None),
    ("<answer>C</answer><answer>D</answer>", None, None),
    ("It shows plaid and dots", OPTIONS, None),
    ("Compare (A) and (B).", None, None),
    # traps: reasoning is not the answer, nothing is not an answer
    ("<think>The answer is C</think>", None, None),
    ("<think>A or B?</think><answer>C</answer>", None, "C"),
    ("<think>Surely C.</think><answer></answer>", None, None),
    ("", None, None),
    ("I cannot tell from the image.", OPTIONS, None),
    ("The answer is not clear", None, None),
    # out-of-range letters are ignored when the options are known
    ("E", OPTIONS, None),
    ("Answer: E", OPTIONS, None),
    ("E", None, "E"),
    # same letter twice is consistent, not ambiguous
    ("B. The answer is B.", None, "B"),
]


@pytest.mark.parametrize(("text", "options", "expected"), CHOICE_CASES)
def test_extract_choice(text, options, expected):
    assert extract_choice(text, options) == expected


def test_extract_choice_table_is_large_enough():
    assert len(CHOICE_CASES) >= 40
    assert sum(expected is None for _, _, expected in CHOICE_CASES) >= 10


def test_extract_choice_rejects_non_text():
    with pytest.raises(ValueError, match="text"):
        extract_choice(["B"])


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        ("3", "3.0", True),
        ("three", "3", True),
        ("There are 3 dogs.", "3", True),
        ("3 dogs and 4 cats", "3", False),
        ("1,000", "1000", True),
        ("-3", "3", False),
        ("0.50", "0.5", True),
        ("<answer>Yes.</answer>", "yes", True),
        ("<think>no</think><answer>No</answer>", "yes", False),
        ("The answer is the Eiffel Tower.", "Eiffel Tower", True),
        ("Eiffel Tower in Paris", "Eiffel Tower", False),
        ("", "yes", False),
        ("anything", "", False),
    ],
)
def test_open_ended_match(text, gold, expected):
    assert open_ended_match(text, gold) is expected


def test_normalize_answer():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffel-tower"
    assert normalize_answer("Twelve apples.") == "12 apples"
    assert normalize_answer("3.50") == "3.5"


@pytest.mark.parametrize(("gold", "expected"), [("B", "B"), ("(b)", "B"), ("C.", "C"), ("yes", None), ("12", None)])
def test_gold_letter(gold, expected):
    assert gold_letter(gold) == expected


def test_accuracy_reward_rows():
    prompts = [QUESTION, QUESTION, QUESTION, "How many dogs?", "skipped generation row"]
    completions = ["<think>dots</think><answer>B</answer>", "Dots", "A", "<answer>three</answer>", "whatever"]
    rewards = accuracy_reward(prompts, completions, answer=["B", "B", "B", "3", None])
    assert rewards == [1.0, 1.0, 0.0, 1.0, None]


def test_accuracy_reward_uses_options_from_prompt_or_kwargs():
    # "Plaid" only maps to a letter through the options: from the prompt, or from kwargs["options"].
    assert accuracy_reward([QUESTION], ["Plaid"], answer=["C"]) == [1.0]
    assert accuracy_reward(["no options"], ["Plaid"], answer=["C"]) == [0.0]
    assert accuracy_reward(["no options"], ["Plaid"], answer=["C"], options=[["x", "y", "plaid"]]) == [1.0]


def test_accuracy_reward_conversational_format():
    prompts = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]]
    completions = [[{"role": "assistant", "content": "<answer>Solid colour</answer>"}]]
    assert accuracy_reward(prompts, completions, answer=["D"]) == [1.0]
    assert completion_text(completions[0]) == "<answer>Solid colour</answer>"


def test_accuracy_reward_length_mismatch():
    with pytest.raises(ValueError, match="answer"):
        accuracy_reward(["q", "q"], ["A", "B"], answer=["A"])
    with pytest.raises(ValueError):  # fewer prompts (or option lists) than completions: no row silently dropped
        accuracy_reward(["q"], ["A", "B"], answer=["A", "B"])
    with pytest.raises(ValueError):
        accuracy_reward(["q", "q"], ["A", "B"], answer=["A", "B"], options=[["x", "y"]])


def test_accuracy_and_format_rewards_go_on_after_a_row_without_answer():
    completions = ["<think>a</think><answer>B</answer>", "<think>a</think><answer>B</answer>", "3"]
    assert accuracy_reward([QUESTION, QUESTION, "How many?"], completions, answer=[None, "B", "3"]) == [None, 1.0, 1.0]
    assert format_reward(["q"] * 3, completions, answer=[None, "B", "3"]) == [None, 1.0, 0.0]


def test_format_reward_length_mismatch():
    with pytest.raises(ValueError):
        format_reward(["q", "q"], ["<think>a</think><answer>B</answer>"] * 2, answer=["B"])


def test_up_to_26_options_are_lettered_a_to_z():
    options = [f"option {i}" for i in range(26)]
    assert extract_choice("Answer: Z", options) == "Z"
    with pytest.raises(ValueError, match="at most 26"):
        extract_choice("Answer: A", [*options, "one too many"])


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>dots</think><answer>B</answer>", 1.0),
        (" <think>dots</think>\n<answer>B</answer>\n", 1.0),
        ("<think></think><answer>B</answer>", 1.0),
        ("<think>dots</think><answer> </answer>", 0.0),
        ("<answer>B</answer>", 0.0),
        ("<think>dots</think>", 0.0),
        ("<think>dots</think><answer>B</answer> trailing", 0.0),
        ("preamble <think>dots</think><answer>B</answer>", 0.0),
        ("<think>a</think><think>b</think><answer>B</answer>", 0.0),
        ("<think>a</think><answer>B</answer><answer>C</answer>", 0.0),
        ("<answer>B</answer><think>dots</think>", 0.0),
        ("B", 0.0),
    ],
)
def test_format_reward(completion, expected):
    assert format_reward(["q"], [completion]) == [expected]


def test_format_reward_skips_rows_without_answer():
    completions = ["<think>a</think><answer>B</answer>", "<think>a</think><answer>B</answer>"]
    assert format_reward(["q", "q"], completions, answer=["B", None]) == [1.0, None]


def test_answer_span_prefers_answer_tag():
    assert answer_span("<think>A</think> text <answer>C</answer>") == "C"
    assert answer_span("<think>A</think> so B") == "so B"
