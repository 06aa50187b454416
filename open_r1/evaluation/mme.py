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

import argparse
import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from open_r1.evaluation.common import (
    AnswerSettings,
    BenchmarkResult,
    UnderstandingItem,
    add_understanding_args,
    answer_and_save,
    answer_settings_from_args,
    decode_image,
    extract_yes_no,
    find_files,
    load_model,
    markdown_table,
    percent,
    read_table,
    require_columns,
    settings_record,
    setup_logging,
)

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration

    from janus import JanusProcessor

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
    return {
        "perception": round(sum(s["score"] for n, s in subtasks.items() if n in PERCEPTION), 2),
        "cognition": round(sum(s["score"] for n, s in subtasks.items() if n in COGNITION), 2),
        "subtasks": subtasks,
        "missing_subtasks": [n for n in PERCEPTION + COGNITION if n not in subtasks],
    }


def run_mme(
    model: JanusForConditionalGeneration,
    processor: JanusProcessor,
    data: Sequence[str | Path],
    out_dir: str | Path,
    settings: AnswerSettings,
    limit: int | None = None,
    model_name: str = "",
    extra_settings: dict[str, Any] | None = None,
) -> BenchmarkResult:
    records = answer_and_save(model, processor, load_items(data, limit), out_dir, settings)
    metrics = score(records)
    if metrics["missing_subtasks"]:
        logger.warning("MME subtasks missing from the data: %s (totals are partial)", metrics["missing_subtasks"])
    result = BenchmarkResult(
        "mme", model_name, "perception", metrics["perception"], len(records), metrics, extra_settings or {}
    )
    result.save(out_dir)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_understanding_args(parser, "MME parquet files (lmms-lab/MME data/) / MME.tsv, or their folder")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    model, processor = load_model(args.model_path, args.device, args.dtype)
    result = run_mme(
        model,
        processor,
        args.data,
        args.out_dir,
        answer_settings_from_args(args),
        args.limit,
        args.model_path,
        settings_record(args),
    )
    rows = [[name, s["acc"], s["acc_plus"], s["score"]] for name, s in result.metrics["subtasks"].items()]
    rows += [
        ["perception (MME-P)", None, None, result.metrics["perception"]],
        ["cognition", None, None, result.metrics["cognition"]],
    ]
    print(markdown_table(["MME subtask", "acc %", "acc+ %", "score"], rows))
