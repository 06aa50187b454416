"""UniRL rewards (arXiv 2505.23380): answer correctness on the model's own generated images.

- `unirl_answer` (understanding): 1 if the sampled answer to the row's question about its generated image is
  correct, else 0 (multiple choice: the accuracy reward's letter parsing; free-form gold: normalised matching,
  then the optional LLM judge).
- `unirl_image` (generation): 1 if the image lets its question be answered correctly. Which answer judges the
  image is selectable (`JUDGE_MODES`): the sampled answer itself, a greedy answer of the current policy
  (default: not penalising an image for an unlucky answer sample), or a greedy answer of a frozen copy.
  Optionally add `hps_v2.1` with its own weight in the reward list. It scores UniRL self rows (`own_image`).
- `self_check` (generation, PairUni + UniRL): the same test for PairUG rows, whose generation sample carries an
  o3-written question/answer about its prompt: does the policy answer it correctly about its own generated image?
The judge's answers themselves come from the trainer (greedy or sampled answers of a backbone about each image):
these functions only read text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from data_tools.multiple_choice import parse_options
from rewards.reward_understand import completion_text, extract_choice, gold_letter, open_ended_match

JUDGE_MODES = ("sampled", "greedy", "frozen")
DEFAULT_JUDGE_MODE = "greedy"
# (question, gold, answer) -> same? (None: no verdict); e.g. rewards.answer_judge.LLMAnswerJudge.
AnswerJudge = Callable[[str, str, str], bool | None]


def answer_is_correct(answer: str, gold: str, question: str, llm_judge: AnswerJudge | None = None) -> bool | None:
    """Whether `answer` answers `question` like `gold` (an option letter, or free text); None when the LLM judge
    was asked and gave no verdict."""
    letter = gold_letter(gold)
    if letter is not None:
        return extract_choice(answer, parse_options(question) or None) == letter
    if open_ended_match(answer, gold):
        return True
    # The LLM is only asked when matching fails: "two clocks" vs "There are 2 clocks." needs meaning, not form.
    return False if llm_judge is None else llm_judge(question, gold, answer)


def answer_correctness(
    answers: Sequence[str],
    golds: Sequence[str | None],
    questions: Sequence[str],
    llm_judge: AnswerJudge | None = None,
) -> list[float | None]:
    """1.0 / 0.0 per row (None where the row has no gold answer or the LLM judge gave no verdict)."""
    if not len(answers) == len(golds) == len(questions):
        raise ValueError(f"answers/golds/questions: lengths {len(answers)}/{len(golds)}/{len(questions)} differ")
    verdicts = [
        None if gold is None else answer_is_correct(answer, gold, question, llm_judge)
        for answer, gold, question in zip(answers, golds, questions, strict=True)
    ]
    return [None if v is None else float(v) for v in verdicts]


def select_judge_answers(
    mode: str,
    sampled: Sequence[str],
    greedy: Sequence[str] | None = None,
    frozen: Sequence[str] | None = None,
) -> list[str]:
    """The answers that judge each image under `mode` (one of `JUDGE_MODES`)."""
    chosen = {"sampled": sampled, "greedy": greedy, "frozen": frozen}
    if mode not in chosen:
        raise ValueError(f"judge mode {mode!r} is not one of {JUDGE_MODES}; pick one")
    if chosen[mode] is None:
        raise ValueError(f"judge mode {mode!r} needs the {mode} answers; pass them as {mode}=...")
    if len(chosen[mode]) != len(sampled):
        raise ValueError(f"{mode} answers: got {len(chosen[mode])} for {len(sampled)} rows; pass one per row")
    return list(chosen[mode])


def unirl_answer_reward(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    answer: Sequence[str | None],
    llm_judge: AnswerJudge | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """Understanding reward: correctness of each sampled completion; `prompts` hold the (templated) questions."""
    questions = kwargs.get("question") or [completion_text(p) for p in prompts]
    return answer_correctness([completion_text(c) for c in completions], answer, questions, llm_judge)


def unirl_image_reward(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    answer: Sequence[str | None],
    question: Sequence[str],
    judge_answers: Sequence[str],
    llm_judge: AnswerJudge | None = None,
    own_image: Sequence[bool] | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """Generation reward: whether the judge's answer about each row's image (`judge_answers`) is correct.

    `prompts` are the captions (unused beyond their count), `question`/`answer` the question about the generated
    image and its gold (None: no question). With `own_image` (the trainer passes it) only UniRL self rows are
    scored; the PairUG rows of a mixed batch get None (`self_check` scores those).
    """
    return _judged_rows(prompts, answer, question, judge_answers, llm_judge, own_image, want_own=True)


def self_check_reward(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    answer: Sequence[str | None],
    question: Sequence[str],
    judge_answers: Sequence[str],
    own_image: Sequence[bool],
    llm_judge: AnswerJudge | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """PairUni + UniRL generation reward: the judge's answer to a PairUG generation sample's own question about the
    generated image is correct (1) or not (0); None for self rows and for samples without a question."""
    return _judged_rows(prompts, answer, question, judge_answers, llm_judge, own_image, want_own=False)


def _judged_rows(prompts, answer, question, judge_answers, llm_judge, own_image, want_own: bool):
    if len(judge_answers) != len(prompts):
        raise ValueError(f"judge_answers: got {len(judge_answers)} for {len(prompts)} images; pass one per image")
    own = [want_own] * len(prompts) if own_image is None else [bool(o) for o in own_image]
    golds = [gold if is_own == want_own else None for gold, is_own in zip(answer, own, strict=True)]
    return answer_correctness(list(judge_answers), golds, question, llm_judge)


__all__ = [
    "DEFAULT_JUDGE_MODE",
    "JUDGE_MODES",
    "AnswerJudge",
    "answer_correctness",
    "answer_is_correct",
    "select_judge_answers",
    "self_check_reward",
    "unirl_answer_reward",
    "unirl_image_reward",
]
