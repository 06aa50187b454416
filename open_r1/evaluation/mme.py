"""MME: yes/no questions, two per image, in 14 subtasks; accuracy and accuracy+ per subtask, perception and
cognition scores.

Input: the hub's parquet (`lmms-lab/MME`, `data/test-*.parquet`: question_id (the image name, shared by its two
questions), image {"bytes"}, question (ending "Please answer yes or no."), answer "Yes"/"No", category (subtask)),
or VLMEvalKit's `MME.tsv` (index, image base64, question, answer, category; questions about the same image are
grouped by identical image data there; an image cell of <= 64 characters holds the `index` of the row that carries
the image, and is resolved through it).

Scoring follows the official MME tool: acc = % questions right; acc+ = % images whose questions are all right;
subtask score = acc + acc+ (max 200); perception (MME-P, max 2000) = sum over the 10 perception subtasks,
cognition (max 800) over the 4 cognition subtasks. A predicted answer that is neither yes nor no is wrong; a gold
answer that is neither is refused.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from open_r1.evaluation.common import (
    BenchmarkResult,
    UnderstandingBenchmark,
    UnderstandingItem,
    decode_image,
    extract_yes_no,
    find_files,
    markdown_table,
    percent,
    read_table,
    require_columns,
)

logger = logging.getLogger(__name__)

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "ocr")
FILE_PATTERNS = ("*.parquet", "*.tsv")
REFERENCE_CELL_CHARS = 64  # VLMEvalKit: an image cell this short is another row's index, not image data
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def subtask_name(category: str) -> str:
    """Canonical subtask name ("OCR" -> "ocr", "Commonsense Reasoning" -> "commonsense_reasoning")."""
    name = category.strip().lower().replace(" ", "_")
    if name not in PERCEPTION + COGNITION:
        raise ValueError(f"category={category!r} is not an MME subtask; expected one of {PERCEPTION + COGNITION}.")
    return name


def _image_key(row: dict[str, Any]) -> str:
    """What groups an image's questions: question_id (hub parquet), else image_path, else a hash of the image."""
    for column in ("question_id", "image_path"):
        if row.get(column):
            return str(row[column])
    cell = row["image"]
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    return hashlib.sha1(data if isinstance(data, bytes) else str(data).encode()).hexdigest()[:16]


def resolve_image_references(rows: list[dict[str, Any]], path: Path) -> None:
    """Replace short image cells that name another row's `index` by that row's image (VLMEvalKit TSVs), in place."""
    if not rows or "index" not in rows[0]:
        return
    by_index = {
        str(row["index"]): row["image"]
        for row in rows
        if not (isinstance(row["image"], str) and len(row["image"]) <= REFERENCE_CELL_CHARS)
    }
    for number, row in enumerate(rows):
        cell = row["image"]
        if isinstance(cell, str) and len(cell) <= REFERENCE_CELL_CHARS and cell.strip() in by_index:
            row["image"] = by_index[cell.strip()]
        elif isinstance(cell, str) and cell.strip().isdigit() and "image_path" not in row:
            raise ValueError(f"{path}:row {number}: image cell {cell!r} names no row's index holding an image.")


def load_items(paths: Sequence[str | Path], limit: int | None = None) -> list[UnderstandingItem]:
    items = []
    for path in find_files(paths, FILE_PATTERNS):
        frame = read_table(path)
        require_columns(frame, ["image", "question", "answer", "category"], str(path))
        rows = frame.to_dict("records")
        resolve_image_references(rows, path)
        for number, row in enumerate(rows):
            where = f"{path}:row {number}"
            answer = row["answer"]
            if not isinstance(answer, str) or answer.strip().lower() not in ("yes", "no"):
                raise ValueError(f"{where}: field 'answer' must be 'Yes' or 'No', got {answer!r}; is this MME data?")
            subtask = subtask_name(str(row["category"]))
            image_key = f"{subtask}/{_image_key(row)}"
            items.append(
                UnderstandingItem(
                    id=f"{image_key}::{row['question']}",
                    question=str(row["question"]),
                    answer=answer.strip().lower(),
                    load_image=lambda cell=row["image"], w=where: decode_image(cell, where=w),
                    meta={"subtask": subtask, "image_key": image_key},
                )
            )
    return items[:limit]


def score(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-subtask acc / acc+ / score (in %), and the perception and cognition totals."""
    questions: dict[str, list[bool]] = defaultdict(list)
    images: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        correct = extract_yes_no(record["prediction"]) == record["answer"]
        questions[record["subtask"]].append(correct)
        images[record["subtask"]][record["image_key"]].append(correct)
    subtasks = {}
    for name in [n for n in PERCEPTION + COGNITION if n in questions]:
        acc = percent(sum(questions[name]), len(questions[name]))
        acc_plus = percent(sum(all(v) for v in images[name].values()), len(images[name]))
        subtasks[name] = {"acc": acc, "acc_plus": acc_plus, "score": round(acc + acc_plus, 2)}
    missing = [n for n in PERCEPTION + COGNITION if n not in subtasks]
    if missing:
        logger.warning("MME subtasks missing from the data: %s (totals are partial)", missing)
    return {
        "perception": round(sum(s["score"] for n, s in subtasks.items() if n in PERCEPTION), 2),
        "cognition": round(sum(s["score"] for n, s in subtasks.items() if n in COGNITION), 2),
        "subtasks": subtasks,
        "missing_subtasks": missing,
    }


def results_table(result: BenchmarkResult) -> str:
    """acc / acc+ / score per subtask, then the perception and cognition totals."""
    rows = [[name, s["acc"], s["acc_plus"], s["score"]] for name, s in result.metrics["subtasks"].items()]
    rows += [
        ["perception (MME-P)", None, None, result.metrics["perception"]],
        ["cognition", None, None, result.metrics["cognition"]],
    ]
    return markdown_table(["MME subtask", "acc %", "acc+ %", "score"], rows)


BENCHMARK = UnderstandingBenchmark(
    name="mme",
    headline_metric="perception",
    load_items=load_items,
    score=score,
    table=results_table,
    description=__doc__,
    data_help="MME parquet files (lmms-lab/MME data/) / MME.tsv, or their folder",
    file_patterns=FILE_PATTERNS,
)
