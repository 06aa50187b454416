"""The multiple-choice question format of PairUG: a stem, `A. option` lines, then one answer-format instruction.

One place for writing it (`format_mcq`) and reading it back (`parse_options`), shared by the pair schema, the data
builders, the accuracy reward and the MMStar / MMMU prompts, so validation, training and grading agree.
"""

from __future__ import annotations

import re
import string

# Option letters in order; at most 26 options.
LETTERS = string.ascii_uppercase
# The multiple-choice instruction of PairUG, Orsta and the MMStar / MMMU prompts (one string for all of them).
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."

_OPTION_LINE_RE = re.compile(r"^[ \t]*(?:\(([A-Z])\)|([A-Z])[.):])[ \t]+(\S.*?)[ \t]*$", re.MULTILINE)
_INLINE_OPTION_RE = re.compile(r"(?:^|,\s*|\n\s*)([A-F])\s*[:.]\s*(.+?)(?=,\s*[A-F]\s*[:.]\s|\n|$)", re.S)


def format_mcq(stem: str, options: list[str]) -> str:
    """A question in the released format: stem, `A. opt` lines, then the answer-format instruction."""
    lines = [stem.strip()] + [f"{LETTERS[i]}. {opt.strip()}" for i, opt in enumerate(options)]
    return "\n".join(lines + [MC_INSTRUCTION])


def parse_options(question: str) -> dict[str, str]:
    """Parse "A. text" / "A) text" / "(A) text" lines of a question into `{"A": "text", ...}`.

    Only a run of consecutive letters starting at A counts (so a stray "I. Introduction" line is not an
    option); if the text holds several runs (a few-shot prompt), the last run with >= 2 options wins.
    Without option lines, an inline "Options: A: x, B: y" block (MMStar's layout) is read instead.
    """
    runs: list[dict[str, str]] = []
    for match in _OPTION_LINE_RE.finditer(question):
        letter = match.group(1) or match.group(2)
        if letter == "A":
            runs.append({})
        if runs and len(runs[-1]) < len(LETTERS) and letter == LETTERS[len(runs[-1])]:
            runs[-1][letter] = match.group(3)
    complete = [run for run in runs if len(run) >= 2]
    return complete[-1] if complete else _inline_options(question)


def _inline_options(question: str) -> dict[str, str]:
    """`{"A": text, ...}` from an inline "Options: A: x, B: y" block; an option runs to the next ", X:" or line end."""
    _, found, block = question.rpartition("Options:")
    if not found:
        return {}
    options = {letter: text.strip().rstrip(",") for letter, text in _INLINE_OPTION_RE.findall(block.strip())}
    return options if len(options) >= 2 else {}


def option_letters(question: str) -> list[str]:
    """Letters of the option lines in a question (empty when open-ended), as the accuracy reward reads them."""
    return list(parse_options(question))
