"""MMMU (validation, 900 questions): multiple-choice accuracy and open-ended normalised match, per subject.

Input: the hub's parquet files as published (`MMMU/MMMU/<Subject>/validation-00000-of-00001.parquet`, 30
subjects) with columns id, question, options (a Python-list string), answer, question_type
("multiple-choice" | "open"), image_1..image_7 ({"bytes", "path"} or empty).

Janus-Pro takes one image per prompt. Questions and options refer to images as `<image N>`: with one referenced
image the reference reads "the image"; with several, the images are placed side by side (left to right, in
increasing N) and each reference reads "image N", with one sentence saying so. The headline follows the official MMMU
evaluation: a multiple-choice answer no option letter can be parsed from counts as a random option (seeded per
question id, so reruns agree); the strict accuracy (unparseable = wrong) is reported beside it. Open answers use the
reward's normalised match against any of the gold answers (MMMU stores several as a list string).
"""

from __future__ import annotations

import ast
import logging
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data_tools.multiple_choice import MC_INSTRUCTION
from open_r1.evaluation.common import (
    BenchmarkResult,
    UnderstandingBenchmark,
    UnderstandingItem,
    choice_letter,
    decode_image,
    find_files,
    markdown_table,
    percent,
    read_table,
    require_columns,
)

logger = logging.getLogger(__name__)

OPEN_INSTRUCTION = "Answer the question using a single word or phrase."
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_IMAGES = 7
FILE_PATTERNS = ("validation-*.parquet",)
RANDOM_GUESS_SEED = 42  # official rule: an unparseable multiple-choice answer becomes a (seeded) random option
_IMAGE_REF = re.compile(r"<image (\d+)>")


def parse_list(cell: Any) -> list[str]:
    """MMMU's list cells: a Python-literal string ("['a', 'b']"), a list/array, or a single string."""
    if isinstance(cell, list | tuple | np.ndarray):
        return [str(v) for v in cell]
    text = str(cell).strip()
    if text.startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return [text]
        return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    return [text] if text else []


def referenced_images(texts: Sequence[str], available: Sequence[int]) -> list[int]:
    """Image numbers referenced as `<image N>` (ascending), else every available image."""
    numbers = sorted({int(n) for text in texts for n in _IMAGE_REF.findall(text)})
    numbers = [n for n in numbers if n in available]
    return numbers or list(available)


def rewrite_references(text: str, numbers: Sequence[int]) -> str:
    """`<image N>` -> "the image" (one image) or "image N" (several, shown side by side)."""
    if len(numbers) == 1:
        return _IMAGE_REF.sub("the image", text)
    return _IMAGE_REF.sub(lambda m: f"image {m.group(1)}", text)


def build_question(question: str, options: Sequence[str], question_type: str, numbers: Sequence[int]) -> str:
    """Prompt text after the image: [layout note] question, lettered options, instruction."""
    lines = []
    if len(numbers) > 1:
        names = ", ".join(f"image {n}" for n in numbers)
        lines.append(f"The picture shows {len(numbers)} images side by side, from left to right: {names}.")
    lines.append(rewrite_references(question, numbers))
    if question_type == "multiple-choice":
        lines += [f"{LETTERS[i]}. {rewrite_references(option, numbers)}" for i, option in enumerate(options)]
        lines.append(MC_INSTRUCTION)
    else:
        lines.append(OPEN_INSTRUCTION)
    return "\n".join(lines)


def side_by_side(images: Sequence[Image.Image]) -> Image.Image:
    """Images scaled to a common height and pasted left to right with a white gap."""
    if len(images) == 1:
        return images[0]
    height = max(image.height for image in images)
    scaled = [image.resize((max(1, round(image.width * height / image.height)), height)) for image in images]
    gap = max(4, height // 50)
    canvas = Image.new("RGB", (sum(i.width for i in scaled) + gap * (len(scaled) - 1), height), "white")
    x = 0
    for image in scaled:
        canvas.paste(image, (x, 0))
        x += image.width + gap
    return canvas


def subject_of(item_id: str) -> str:
    """`validation_Art_Theory_12` -> `Art_Theory`."""
    parts = item_id.split("_")
    return "_".join(parts[1:-1]) if len(parts) > 2 else item_id


def _row_item(row: dict[str, Any], where: str) -> UnderstandingItem:
    question_type = str(row["question_type"])
    if question_type not in ("multiple-choice", "open"):
        raise ValueError(f"{where}: question_type={question_type!r}; expected 'multiple-choice' or 'open'.")
    answer = row["answer"]
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"{where}: field 'answer' must be a non-empty string, got {answer!r}; is this MMMU data?")
    if question_type == "multiple-choice" and answer.strip().upper() not in LETTERS:
        raise ValueError(f"{where}: multiple-choice field 'answer' must be an option letter, got {answer!r}.")
    options = parse_list(row["options"]) if question_type == "multiple-choice" else []
    cells = {n: row.get(f"image_{n}") for n in range(1, MAX_IMAGES + 1)}
    available = [
        n for n, cell in cells.items() if cell is not None and not (isinstance(cell, float) and np.isnan(cell))
    ]
    if not available:
        raise ValueError(f"{where}: no image_1..image_{MAX_IMAGES}; MMMU validation questions all have images.")
    numbers = referenced_images([str(row["question"]), *options], available)

    def load_image() -> Image.Image:
        return side_by_side([decode_image(cells[n], where=f"{where}.image_{n}") for n in numbers])

    return UnderstandingItem(
        id=str(row["id"]),
        question=build_question(str(row["question"]), options, question_type, numbers),
        answer=answer,
        load_image=load_image,
        meta={
            "subject": subject_of(str(row["id"])),
            "question_type": question_type,
            "options": options,
            "images": numbers,
        },
    )


def load_items(paths: Sequence[str | Path], limit: int | None = None) -> list[UnderstandingItem]:
    """Items of every `validation-*.parquet` under `paths` (or the files named), in file then row order."""
    items = []
    for path in find_files(paths, FILE_PATTERNS):
        frame = read_table(path)
        require_columns(frame, ["id", "question", "options", "answer", "question_type", "image_1"], str(path))
        items += [_row_item(row, f"{path}:{row['id']}") for row in frame.to_dict("records")]
    return items[:limit]


def random_option(item_id: str, options: Sequence[str]) -> str | None:
    """The official fallback for an unparseable multiple-choice answer: a random option letter, seeded by the
    question id so the guess does not depend on the order or subset of questions scored."""
    if not options:
        return None
    return random.Random(f"{RANDOM_GUESS_SEED}:{item_id}").choice(LETTERS[: len(options)])


def score_record(record: dict[str, Any]) -> tuple[str | None, bool, bool]:
    """(parsed answer, correct by the official rule, correct by the strict rule) of one prediction record."""
    from rewards.reward_understand import answer_span, open_ended_match

    if record["question_type"] == "multiple-choice":
        gold = record["answer"].strip().upper()
        letter = choice_letter(record["prediction"], record["options"])
        guess = letter if letter is not None else random_option(str(record["id"]), record["options"])
        return letter, guess == gold, letter == gold
    golds = parse_list(record["answer"])
    correct = any(open_ended_match(record["prediction"], g) for g in golds)
    return answer_span(record["prediction"]), correct, correct


def _accuracies(records: Sequence[dict[str, Any]], correct: Sequence[bool]) -> dict[str, Any]:
    by_subject: dict[str, list[bool]] = defaultdict(list)
    by_type: dict[str, list[bool]] = defaultdict(list)
    for record, ok in zip(records, correct):
        by_subject[record["subject"]].append(ok)
        by_type[record["question_type"]].append(ok)
    return {
        "accuracy": percent(sum(correct), len(records)),
        "per_subject": {k: percent(sum(v), len(v)) for k, v in sorted(by_subject.items())},
        "per_question_type": {k: percent(sum(v), len(v)) for k, v in sorted(by_type.items())},
    }


def score(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (%) overall, per subject and per question type: the official rule as the headline, the strict
    rule (unparseable multiple-choice answers are wrong) under "strict"."""
    scored = [score_record(record) for record in records]
    official = _accuracies(records, [ok for _, ok, _ in scored])
    strict = _accuracies(records, [ok for _, _, ok in scored])
    unparsed = sum(parsed is None for (parsed, _, _), r in zip(scored, records) if r["question_type"] != "open")
    return {
        **official,
        "headline_rule": "official: an unparseable multiple-choice answer counts as a seeded random option",
        "strict": strict,
        "unparsed_multiple_choice": unparsed,
    }


def results_table(result: BenchmarkResult) -> str:
    """Per-subject rows, then per-question-type rows, then the overall accuracy (official, strict)."""
    strict = result.metrics["strict"]
    rows = [[subject, acc, strict["per_subject"][subject]] for subject, acc in result.metrics["per_subject"].items()]
    rows += [
        [f"({kind})", acc, strict["per_question_type"][kind]]
        for kind, acc in result.metrics["per_question_type"].items()
    ]
    rows.append(["overall", result.headline, strict["accuracy"]])
    return markdown_table(["MMMU subject", "accuracy % (official)", "strict %"], rows)


BENCHMARK = UnderstandingBenchmark(
    name="mmmu",
    headline_metric="accuracy",
    load_items=load_items,
    score=score,
    table=results_table,
    description=__doc__,
    data_help="MMMU folder (per-subject validation-*.parquet) or the parquet files",
    file_patterns=FILE_PATTERNS,
)
