"""Understanding rewards: multiple-choice accuracy (open-ended fallback) and the think/answer format reward.

PairUni (§3.2) rewards an understanding rollout with 1 when the parsed option letter equals the
gold letter, else 0. Parsing is the hard part: `extract_choice` documents its precedence below and is also
what the evaluation scripts use to grade benchmark answers, so training and evaluation agree.

Letter extraction, in order; the first rule that finds anything decides, and if that rule finds two
different letters the answer is ambiguous and gets no credit (None):
  0. `<answer>...</answer>`: if the text has an answer tag only its content is parsed (rules 1-4);
     otherwise `<think>...</think>` blocks are removed, so reasoning never counts as the answer.
  1. an explicit answer phrase: "answer is C", "Answer: (b)", "final answer: **C**", "\\boxed{C}".
  2. a leading letter: "C", "C.", "(c)", "**C**", "C. Stripes", "Option C".
  3. an isolated letter elsewhere: a line that is only a letter, a letter in parentheses or bold, or a
     capital letter ending the text ("... so it is B.").
  4. option text (when the options are known): the text equals, or names exactly one, option.
A bare lowercase letter counts only when delimited ("b." / "(b)" / end of text) so "a dog" is an article,
not option A; a bare uppercase "A"/"I" followed by a word is likewise an article/pronoun ("A cat sits"),
except "A is/because/..." . Listed letters ("A and C", "A, C") are ambiguous. With known options, letters
outside the option range are ignored.

Open-ended gold answers (not a single letter) use normalised exact match: lowercase, articles and
punctuation removed, number words zero..twenty mapped to digits, numbers compared by value
("3" == "3.0" == "three"); a numeric gold answer also matches a response holding exactly one number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from data_tools.multiple_choice import LETTERS, parse_options

__all__ = [
    "accuracy_reward",
    "answer_span",
    "answer_spans",
    "completion_text",
    "extract_choice",
    "format_reward",
    "gold_letter",
    "normalize_answer",
    "open_ended_match",
]

# A letter token: wrapped ("(B)", "[B]", "**B**") or bare. Bare tokens get extra checks in `_accept_bare`.
_TOKEN = r"(?:\(\s*(?P<p>[A-Za-z])\s*\)|\[\s*(?P<s>[A-Za-z])\s*\]|\*\*\s*(?P<b>[A-Za-z])\s*\*\*|(?P<bare>[A-Za-z]))"
_AFTER_TOKEN = r"(?![A-Za-z0-9'])"
# "Option A shows x" in reasoning is not a verdict, so a bare "option"/"choice" is not an answer keyword;
# "the correct option is C", "I choose option C" and "answer: option C" are.
_EXPLICIT_KEYWORD_RE = re.compile(
    r"\b(?:answer|(?:correct|right|best|final)\s+(?:option|choice)|choose|select|pick)s?\b", re.IGNORECASE
)
_EXPLICIT_RE = re.compile(
    _EXPLICIT_KEYWORD_RE.pattern
    + r"(?:\s|[:=*\-]|\b(?:is|would|should|be|option|choice|letter)\b)*"
    + _TOKEN
    + _AFTER_TOKEN,
    re.IGNORECASE,
)
_BOXED_RE = re.compile(r"\\boxed\{\s*(?:\\text\{\s*)?\(?([A-Za-z])\)?\s*\}?\s*\}")
_LEADING_RE = re.compile(r"^[\s*_`#]*(?P<kw>(?:option|choice)\s*)?" + _TOKEN + _AFTER_TOKEN, re.IGNORECASE)
# "A is correct" / "A because ..." name option A; "A cat ..." is an article.
_A_VERB_RE = re.compile(r"\s+(?:is|was|would|should|seems|appears|because|since|matches|fits)\b")
_LIST_TAIL_RE = re.compile(r"^\s*(?:,|/|&|\band\b|\bor\b)\s*" + _TOKEN + _AFTER_TOKEN, re.IGNORECASE)
_LINE_LETTER_RE = re.compile(r"^[ \t]*" + _TOKEN + r"[ \t]*[.)]?[ \t]*$", re.MULTILINE)
_WRAPPED_RE = re.compile(r"\(\s*([A-Z])\s*\)|\*\*\s*([A-Za-z])\s*\*\*")
_FINAL_LETTER_RE = re.compile(r"(?<=\s)([A-Z])[ \t]*[.!]?[ \t]*$")
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_OPEN_ANSWER_RE = re.compile(r"<answer>(.*)$", re.IGNORECASE | re.DOTALL)
_THINK_RE = re.compile(r"<think>.*?(?:</think>|$)", re.IGNORECASE | re.DOTALL)
_FORMAT_RE = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$", re.DOTALL)
_ARTICLES = {"a", "an", "the"}
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}


def _options_dict(options: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    if options is None:
        return {}
    if isinstance(options, Mapping):
        return {str(k).strip().upper(): str(v) for k, v in options.items()}
    if len(options) > len(LETTERS):
        raise ValueError(f"options: got {len(options)} options, at most {len(LETTERS)} (A-Z) are supported")
    return {LETTERS[i]: str(text) for i, text in enumerate(options)}


def _token_letter(match: re.Match[str]) -> tuple[str, bool]:
    """(letter, was_bare) of a `_TOKEN` match."""
    for group in ("p", "s", "b"):
        if match.group(group):
            return match.group(group), False
    return match.group("bare"), True


def _accept_bare(letter: str, rest: str) -> bool:
    """Whether a bare (unwrapped) letter followed by `rest` reads as an option letter rather than a word."""
    delimited = re.match(r"\s*(?:$|[.):,;!?\]]|\*\*)", rest) is not None
    if letter == "A" and _A_VERB_RE.match(rest):
        return True
    if letter.islower() or letter in "AI":
        # "a dog", "A cat sits", "I think": articles and pronouns, not choices.
        return delimited
    return True


def _explicit_letters(text: str) -> list[str]:
    """Rule 1: letters named by an answer phrase ("the answer is C", "\\boxed{C}")."""
    letters = [m.group(1).upper() for m in _BOXED_RE.finditer(text)]
    # Search from every keyword, not with finditer alone: "Option A shows x. The answer is C" has two phrases.
    for keyword in _EXPLICIT_KEYWORD_RE.finditer(text):
        match = _EXPLICIT_RE.match(text, keyword.start())
        if match is None:
            continue
        letter, bare = _token_letter(match)
        if bare and letter.islower() and not _accept_bare(letter, text[match.end() :]):
            continue
        letters.append(letter.upper())
        letters.extend(_list_tail(text[match.end() :]))
    return letters


def _list_tail(rest: str) -> list[str]:
    """Letters listed right after a chosen one ("A and C", "A, C", "A/C"): they make the answer ambiguous."""
    match = _LIST_TAIL_RE.match(rest)
    if match is None:
        return []
    letter, bare = _token_letter(match)
    if bare and not _accept_bare(letter, rest[match.end() :]):
        return []
    return [letter.upper()]


def _leading_letters(text: str) -> list[str]:
    """Rule 2: the text starts with a letter ("C", "C. Stripes", "(c)", "Option C")."""
    match = _LEADING_RE.match(text)
    if match is None:
        return []
    letter, bare = _token_letter(match)
    rest = text[match.end() :]
    # After "Option"/"Choice" an uppercase letter is unambiguous even when followed by a word.
    keyword_upper = match.group("kw") is not None and letter.isupper()
    # "A and B" lists two letters (ambiguous, so both are returned) even though "A" alone could be an article.
    tail = _list_tail(rest)
    if bare and not keyword_upper and not tail and not _accept_bare(letter, rest):
        return []
    return [letter.upper(), *tail]


def _isolated_letters(text: str) -> list[str]:
    """Rule 3: a line that is only a letter, a letter in parentheses / bold anywhere, or a final capital letter."""
    letters = [_token_letter(match)[0].upper() for match in _LINE_LETTER_RE.finditer(text)]
    # "... so it is B." ends on a capital letter; an article or pronoun never ends a sentence.
    letters.extend(m.group(1) for m in _FINAL_LETTER_RE.finditer(text))
    letters.extend((m.group(1) or m.group(2)).upper() for m in _WRAPPED_RE.finditer(text))
    return letters


def _option_text_letters(text: str, options: dict[str, str]) -> list[str]:
    """Rule 4: the text equals one option's text, or mentions exactly one (the most specific) option."""
    target = normalize_answer(text)
    normalized = {letter: normalize_answer(option) for letter, option in options.items()}
    exact = [letter for letter, option in normalized.items() if option and option == target]
    if exact:
        return exact
    padded = f" {target} "
    found = {letter: option for letter, option in normalized.items() if option and f" {option} " in padded}
    # "dark red" also contains option "red": keep only matches not contained in another match.
    return [
        letter
        for letter, option in found.items()
        if not any(other != option and f" {option} " in f" {other} " for other in found.values())
    ]


def _decide(letters: list[str]) -> str | None:
    distinct = set(letters)
    return distinct.pop() if len(distinct) == 1 else None


def answer_spans(text: str) -> list[str]:
    """The parts of a completion that hold its answer: each answer tag's content, else the text minus think blocks.

    An unclosed `<answer>` (a completion cut at max length) counts up to the end of the text.
    """
    tagged = _ANSWER_TAG_RE.findall(text)
    if tagged:
        return [span.strip() for span in tagged]
    unclosed = _OPEN_ANSWER_RE.search(text)
    if unclosed is not None:
        return [unclosed.group(1).strip()]
    return [_THINK_RE.sub(" ", text).strip()]


def answer_span(text: str) -> str:
    """`answer_spans` joined by newlines (for open-ended grading and display)."""
    return "\n".join(answer_spans(text))


def _span_letters(span: str, option_map: dict[str, str]) -> list[str]:
    """Letters chosen in one answer span by the first rule (1-4) that finds any."""
    for rule in (_explicit_letters, _leading_letters, _isolated_letters):
        letters = [letter for letter in rule(span) if not option_map or letter in option_map]
        if letters:
            return letters
    return _option_text_letters(span, option_map) if option_map else []


def extract_choice(text: str, options: Sequence[str] | Mapping[str, str] | None = None) -> str | None:
    """The option letter ("A".."Z") a free-text answer chooses, or None if none or several are chosen.

    `options`: the option texts in order (A, B, ...) or a `{letter: text}` dict (see
    `data_tools.multiple_choice.parse_options`); when given, answers that only repeat an option's text are
    understood and out-of-range letters ignored.
    Precedence: see the module docstring. Several answer tags must agree.
    """
    if not isinstance(text, str):
        raise ValueError(f"text: expected a str, got {type(text).__name__}; decode completions before parsing")
    option_map = _options_dict(options)
    letters = [letter for span in answer_spans(text) for letter in _span_letters(span, option_map)]
    return _decide(letters)


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and articles, map number words to digits and numbers to a canonical form."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())  # "1,000" -> "1000"
    tokens = re.sub(r"[^\w\s.\-]", " ", text).split()
    words = []
    for token in tokens:
        token = token.strip(".")
        if _canonical_number(token) is None:
            token = token.strip("-")
        token = _NUMBER_WORDS.get(token, token)
        if not token or token in _ARTICLES:
            continue
        words.append(_canonical_number(token) or token)
    return " ".join(words)


def _canonical_number(token: str) -> str | None:
    """ "3.0" -> "3", "0.50" -> "0.5"; None if `token` is not a finite number."""
    try:
        value = float(token.replace(",", ""))
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return str(int(value)) if value.is_integer() else repr(value)


def _explicit_answer_text(span: str) -> str:
    """For open-ended answers: the text after the last "answer is"/"Answer:" phrase, to the end of its sentence."""
    matches = list(re.finditer(r"\banswer\b(?:\s*(?:is|:|=|would be|should be))+\s*", span, re.IGNORECASE))
    if not matches:
        return span
    tail = span[matches[-1].end() :]
    return re.split(r"(?<!\d)[.!?\n](?!\d)", tail, maxsplit=1)[0]


def open_ended_match(text: str, gold: str) -> bool:
    """Normalised exact match of a completion's answer against an open-ended gold answer."""
    candidate = normalize_answer(_explicit_answer_text(answer_span(text)))
    target = normalize_answer(gold)
    if not target:
        return False
    if candidate == target:
        return True
    # A numeric gold answer also matches when the response states exactly one number ("There are 3 dogs").
    if _canonical_number(target) is not None:
        numbers = {n for n in (_canonical_number(t) for t in candidate.split()) if n is not None}
        return numbers == {target}
    return False


def gold_letter(answer: str) -> str | None:
    """The option letter a gold answer denotes ("B", "(b)", "B.") or None for an open-ended answer."""
    match = re.fullmatch(r"\s*\(?\s*([A-Za-z])\s*[).]?\s*", answer)
    return match.group(1).upper() if match else None


def completion_text(value: Any) -> str:
    """Text of a TRL prompt/completion: a str, or conversational messages (content str or typed parts)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, Sequence):
        parts = []
        for message in value:
            content = message.get("content", "") if isinstance(message, Mapping) else message
            if isinstance(content, str):
                parts.append(content)
            else:
                parts.extend(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
        return "\n".join(parts)
    raise ValueError(f"completion: expected a str or a list of chat messages, got {type(value).__name__}")


def accuracy_reward(
    prompts: Sequence[Any], completions: Sequence[Any], answer: Sequence[str | None], **kwargs: Any
) -> list[float | None]:
    """1.0 if a completion's answer matches the gold `answer`, else 0.0; None for rows without an answer.

    Gold letters are graded with `extract_choice`, using the options parsed from the prompt (or
    `kwargs["options"]`, a per-row list of option lists); other gold answers with `open_ended_match`.
    """
    if len(answer) != len(completions):
        raise ValueError(
            f"answer: got {len(answer)} gold answers for {len(completions)} completions; pass one per row"
        )
    row_options = kwargs.get("options") or [None] * len(completions)
    rewards: list[float | None] = []
    for prompt, completion, gold, options in zip(prompts, completions, answer, row_options, strict=True):
        if gold is None:
            rewards.append(None)
            continue
        text = completion_text(completion)
        letter = gold_letter(gold)
        if letter is None:
            rewards.append(float(open_ended_match(text, gold)))
            continue
        choices = options if options is not None else parse_options(completion_text(prompt))
        rewards.append(float(extract_choice(text, choices or None) == letter))
    return rewards


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """1.0 for exactly `<think>...</think><answer>...</answer>` (one of each tag, non-empty answer), else 0.0.

    Rows whose `kwargs["answer"]` is None (not understanding rows) get None. Whitespace around and between
    the blocks is allowed; text outside them is not.
    """
    gold = kwargs.get("answer") or [""] * len(completions)
    rewards: list[float | None] = []
    for completion, row_gold in zip(completions, gold, strict=True):
        if row_gold is None:
            rewards.append(None)
            continue
        text = completion_text(completion)
        tags_once = all(text.count(tag) == 1 for tag in ("<think>", "</think>", "<answer>", "</answer>"))
        match = _FORMAT_RE.match(text) if tags_once else None
        rewards.append(float(match is not None and match.group(2).strip() != ""))
    return rewards
