"""UniRL "self" rows: a prompt with a question about the image the model will draw for it (no image file).

Row: `{"prompt", "question", "answer", "tag", "include"[, "exclude"]}`. Two flavours parse through here:
- this project's training rows (`data_tools/make_unirl_prompts.py`): 4-option multiple choice, letter answers;
- the UniRL authors' `evaluation_metadata_qa.jsonl` (GenEval metadata + one free-form question/answer per tag,
  e.g. `"answer": "two clocks"`), graded by normalised matching or an LLM judge (rewards/reward_unirl.py).
`include`/`exclude` keep GenEval's object specs (`{"class", "count"[, "color", "position"]}`) so GenEval-style
checks stay possible. Errors read `file:line: field: problem; fix: ...` (data_tools.schema.SchemaError).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data_tools.jsonl import iter_jsonl, scan_lines
from data_tools.schema import Pair, SchemaError, check_choice_answer, parse_pair, string_field

GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


@dataclass(frozen=True)
class SelfRow:
    """One UniRL training or evaluation row; `answer` is an option letter or a free-form gold answer."""

    prompt: str
    question: str
    answer: str
    tag: str = ""
    include: list[dict[str, Any]] = field(default_factory=list)
    exclude: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.exclude:
            del out["exclude"]
        return out


# The two sides of a PairUG pair (data_tools.schema): a line holding either is a pair, never a self row.
PAIR_SIDES = frozenset(("generate_ann", "understand_ann"))


def is_self_row(obj: Any) -> bool:
    """A self row has a prompt or a question but no pair sides (PairUG pairs have `generate_ann`).

    A prompt alone is enough, so a self row that lacks its question is reported as missing `question`, not as a
    pair missing `generate_ann`.
    """
    return isinstance(obj, dict) and not PAIR_SIDES & obj.keys() and ("question" in obj or "prompt" in obj)


def _specs(obj: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    """GenEval object specs: a list of objects with a string `class` and a positive integer `count`."""
    value = obj.get(key) or []
    if not isinstance(value, list):
        raise SchemaError(
            where, key, f"expected a list, got {type(value).__name__}", f'write {key} as [{{"class": ..}}]'
        )
    for i, spec in enumerate(value):
        name = f"{key}[{i}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("class"), str) or not spec["class"].strip():
            raise SchemaError(where, f"{name}.class", f"missing object class in {spec!r}", 'add "class": "<object>"')
        count = spec.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise SchemaError(where, f"{name}.count", f"{count!r} is not a count", "write a non-negative integer")
    return value


def parse_self_row(obj: Any, where: str) -> SelfRow:
    """Parse one row (either flavour); `where` ("file:line") prefixes every error. Raises `SchemaError`."""
    if not isinstance(obj, dict):
        raise SchemaError(where, "<line>", f"expected a JSON object, got {type(obj).__name__}", "one object per line")
    prompt = string_field(obj, "prompt", where)
    question = string_field(obj, "question", where)
    answer = obj.get("answer")
    answer = "" if answer is None else str(answer).strip()
    if not answer:
        raise SchemaError(where, "answer", "missing or empty", "add the gold answer (an option letter or free text)")
    check_choice_answer(question, answer, where, "answer")
    tag = obj.get("tag") or ""
    if not isinstance(tag, str):
        raise SchemaError(where, "tag", f"expected a string, got {type(tag).__name__}", "write the GenEval tag")
    return SelfRow(prompt.strip(), question, answer, tag, _specs(obj, "include", where), _specs(obj, "exclude", where))


def parse_row(obj: Any, where: str) -> Pair | SelfRow:
    """A line of a training file: a UniRL self row (`is_self_row`) or a PairUG pair. Raises `SchemaError`."""
    return parse_self_row(obj, where) if is_self_row(obj) else parse_pair(obj, where)


def scan_rows(
    path: str | Path, image_root: Path, check_files: bool = True
) -> tuple[list[tuple[str, Pair | SelfRow]], list[str]]:
    """Every line of a pair / self-row JSONL checked as `data_tools.jsonl.scan_pairs` checks pairs: the valid
    `("file:line", Pair | SelfRow)`s and the other lines' errors. Shared by `data_tools.validate` and training."""
    return scan_lines(path, image_root, parse_row, check_files)


def read_self_rows(path: str | Path) -> list[SelfRow]:
    """All rows of a self-row JSONL; the first bad line raises `SchemaError` naming file:line and field."""
    return [parse_self_row(obj, where) for where, obj in iter_jsonl(path)]


__all__ = [
    "GENEVAL_TAGS",
    "PAIR_SIDES",
    "SelfRow",
    "is_self_row",
    "parse_row",
    "parse_self_row",
    "read_self_rows",
    "scan_rows",
]
