"""MME: yes/no questions, two per image, in 14 subtasks; accuracy and accuracy+ per subtask, perception and
cognition scores.

Input: the hub's parquet (`lmms-lab/MME`, `data/test-*.parquet`: question_id (the image name, shared by its two
questions), image {"bytes"}, question (ending "Please answer yes or no."), answer "Yes"/"No", category (subtask)),
or VLMEvalKit's `MME.tsv` (index, image base64, question, answer, category; questions about the same image are
grouped by identical image data there).

Scoring follows the official MME tool: acc = % questions right; acc+ = % images whose questions are all right;
subtask score = acc + acc+ (max 200); perception (MME-P, max 2000) = sum over the 10 perception subtasks,
cognition (max 800) over the 4 cognition subtasks. An answer that is neither yes nor no is wrong.
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


def load_items(paths: Sequence[str | Path], limit: int | None = None) -> list[UnderstandingItem]:
    items = []
    for path in find_files(paths, ["*.parquet", "*.tsv"]):
        frame = read_table(path)
        require_columns(frame, ["image", "question", "answer", "category"], str(path))
        for number, row in enumerate(frame.to_dict("records")):
            subtask = subtask_name(str(row["category"]))
            image_key = f"{subtask}/{_image_key(row)}"
            where = f"{path}:row {number}"
            items.append(
                UnderstandingItem(
                    id=f"{image_key}::{row['question']}",
                    question=str(row["question"]),
                    answer=str(row["answer"]).strip().lower(),
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
)
