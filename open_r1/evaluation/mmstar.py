"""MMStar (1,500 multiple-choice questions): overall, per-category and per-subcategory accuracy.

Input: the hub's parquet (`Lin-Chen/MMStar`, `mmstar.parquet`: index, question, image {"bytes"}, answer, category,
l2_category, ...) or VLMEvalKit's `MMStar.tsv` (same columns, base64 image). The options are inside the question
text ("Options: A: ..., B: ..."), so the prompt is the question plus the reward's letter instruction. The hub folder
ships both files (the same 1,500 items): an item met again with the same `index` and answer is read once.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_tools.multiple_choice import MC_INSTRUCTION, parse_options
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

INSTRUCTION = MC_INSTRUCTION  # the same instruction line as the pairs and the accuracy reward

FILE_PATTERNS = ("*.parquet", "*.tsv")


def _row_item(row: dict[str, Any], where: str) -> UnderstandingItem:
    answer = row["answer"]
    if not isinstance(answer, str) or not re.fullmatch(r"\s*[A-F]\s*", answer):
        raise ValueError(f"{where}: field 'answer' must be an option letter A-F (a string), got {answer!r}.")
    return UnderstandingItem(
        id=str(row["index"]),
        question=f"{row['question']}\n{INSTRUCTION}",
        answer=answer.strip(),
        load_image=lambda cell=row["image"], w=where: decode_image(cell, where=w),
        meta={
            "category": str(row["category"]),
            "l2_category": str(row["l2_category"]),
            "options": parse_options(str(row["question"])),
        },
    )


def load_items(paths: Sequence[str | Path], limit: int | None = None) -> list[UnderstandingItem]:
    """Items of every parquet / TSV file under `paths`, each `index` once (the hub folder holds both formats)."""
    items: dict[str, UnderstandingItem] = {}
    for path in find_files(paths, FILE_PATTERNS):
        frame = read_table(path)
        require_columns(frame, ["index", "question", "answer", "category", "l2_category", "image"], str(path))
        repeated = 0
        for row in frame.to_dict("records"):
            item = _row_item(row, f"{path}:index={row['index']}")
            if item.id in items:
                if items[item.id].answer != item.answer:
                    raise ValueError(
                        f"{path}:index={item.id}: answer {item.answer!r} differs from {items[item.id].answer!r} in "
                        "an earlier file; pass only one MMStar version."
                    )
                repeated += 1
                continue
            items[item.id] = item
        if repeated:
            logger.info("%s: %d items already read from another file (same index), read once", path, repeated)
    return list(items.values())[:limit]


def score(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    by_category: dict[str, list[bool]] = defaultdict(list)
    by_l2: dict[str, list[bool]] = defaultdict(list)
    unparsed = 0
    for record in records:
        letter = choice_letter(record["prediction"], record["options"])
        unparsed += letter is None
        correct = letter == record["answer"].upper()
        by_category[record["category"]].append(correct)
        by_l2[f"{record['category']}/{record['l2_category']}"].append(correct)
    return {
        "accuracy": percent(sum(sum(v) for v in by_category.values()), len(records)),
        "per_category": {k: percent(sum(v), len(v)) for k, v in sorted(by_category.items())},
        "per_l2_category": {k: percent(sum(v), len(v)) for k, v in sorted(by_l2.items())},
        "unparsed": unparsed,
    }


def results_table(result: BenchmarkResult) -> str:
    """Per-category rows, then the overall accuracy."""
    rows = [[category, acc] for category, acc in result.metrics["per_category"].items()]
    return markdown_table(["MMStar category", "accuracy %"], rows + [["overall", result.headline]])


BENCHMARK = UnderstandingBenchmark(
    name="mmstar",
    headline_metric="accuracy",
    load_items=load_items,
    score=score,
    table=results_table,
    description=__doc__,
    data_help="MMStar parquet / TSV file(s) or their folder",
    file_patterns=FILE_PATTERNS,
)
