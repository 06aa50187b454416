"""MMMU (validation, 900 questions): multiple-choice accuracy and open-ended normalised match, per subject.

Input: the hub's parquet files as published (`MMMU/MMMU/<Subject>/validation-00000-of-00001.parquet`, 30
subjects) with columns id, question, options (a Python-list string), answer, question_type
("multiple-choice" | "open"), image_1..image_7 ({"bytes", "path"} or empty).

Janus-Pro takes one image per prompt. Questions and options refer to images as `<image N>`: with one referenced
image the reference reads "the image"; with several, the images are placed side by side (left to right, in
increasing N) and each reference reads "image N", with one sentence saying so. Unparseable answers count as wrong
(the official MMMU script guesses randomly instead). Open answers use the reward's normalised match against any of
the gold answers (MMMU stores several as a list string).
"""

from __future__ import annotations

import ast
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

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

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_INSTRUCTION = "Answer the question using a single word or phrase."
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_IMAGES = 7
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
        answer=str(row["answer"]),
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
    for path in find_files(paths, ["validation-*.parquet"]):
        frame = read_table(path)
        require_columns(frame, ["id", "question", "options", "answer", "question_type", "image_1"], str(path))
        items += [_row_item(row, f"{path}:{row['id']}") for row in frame.to_dict("records")]
    return items[:limit]


def score_record(record: dict[str, Any]) -> tuple[str | None, bool]:
    """(parsed answer, correct) of one prediction record."""
    from rewards.reward_understand import answer_span, open_ended_match

    if record["question_type"] == "multiple-choice":
        letter = choice_letter(record["prediction"], record["options"])
        return letter, letter == record["answer"].strip().upper()
    golds = parse_list(record["answer"])
    return answer_span(record["prediction"]), any(open_ended_match(record["prediction"], g) for g in golds)


def score(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall accuracy (%), per subject and per question type."""
    by_subject: dict[str, list[bool]] = defaultdict(list)
    by_type: dict[str, list[bool]] = defaultdict(list)
    unparsed = 0
    for record in records:
        parsed, correct = score_record(record)
        unparsed += parsed is None
        by_subject[record["subject"]].append(correct)
        by_type[record["question_type"]].append(correct)
    total = sum(sum(v) for v in by_subject.values())
    return {
        "accuracy": percent(total, len(records)),
        "per_subject": {k: percent(sum(v), len(v)) for k, v in sorted(by_subject.items())},
        "per_question_type": {k: percent(sum(v), len(v)) for k, v in sorted(by_type.items())},
        "unparsed_multiple_choice": unparsed,
    }


def results_table(result: BenchmarkResult) -> str:
    """Per-subject rows, then per-question-type rows, then the overall accuracy."""
    rows = [[subject, acc] for subject, acc in result.metrics["per_subject"].items()]
    rows += [[f"({kind})", acc] for kind, acc in result.metrics["per_question_type"].items()]
    return markdown_table(["MMMU subject", "accuracy %"], rows + [["overall", result.headline]])


BENCHMARK = UnderstandingBenchmark(
    name="mmmu",
    headline_metric="accuracy",
    load_items=load_items,
    score=score,
    table=results_table,
    description=__doc__,
    data_help="MMMU folder (per-subject validation-*.parquet) or the parquet files",
)
