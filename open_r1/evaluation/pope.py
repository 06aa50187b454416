"""POPE (object hallucination, COCO val2014): accuracy, precision, recall, F1 and yes-ratio per split
(random / popular / adversarial), "yes" being the positive class.

Input, either:
- the hub's parquet (`lmms-lab/POPE`, `data/test-*.parquet`: question_id, question, answer "yes"/"no", image
  {"bytes"}, category = split), or
- the official POPE files `coco_pope_{random,popular,adversarial}.json` (JSON lines: question_id, image (file
  name), text, label) with `--image_root` pointing at COCO val2014 images; the split comes from the file name.
The headline is the mean F1 over the splits under the official POPE rule (its evaluate script, the numbers papers
report): keep the answer's first sentence, drop commas, split on spaces; "No", "no" or "not" among the words means
"no", anything else "yes". The strict rule (the reward's yes/no parser; an answer that is neither counts as wrong
for both classes, never a true negative) is reported beside it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
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
)

logger = logging.getLogger(__name__)

SPLITS = ("random", "popular", "adversarial")
INSTRUCTION = "Please answer yes or no."
FILE_PATTERNS = ("*.parquet", "coco_pope_*.json", "*pope*.jsonl")


def _split_from_name(path: Path) -> str:
    found = [split for split in SPLITS if split in path.name.lower()]
    if len(found) != 1:
        raise ValueError(f"{path}: cannot tell the POPE split from the file name; name it coco_pope_<split>.json.")
    return found[0]


def _normalise_row(row: dict[str, Any], path: Path) -> tuple[str, str, str, Any]:
    """(split, question, answer, image cell) for a parquet row or an official JSON-lines row."""
    if "text" in row and "label" in row:  # official POPE files
        return _split_from_name(path), str(row["text"]), str(row["label"]), row["image"]
    for column in ("question", "answer", "image", "category"):
        if column not in row:
            raise ValueError(
                f"{path}: missing column {column!r}; expected lmms-lab/POPE parquet or official POPE json."
            )
    return str(row["category"]).lower(), str(row["question"]), str(row["answer"]), row["image"]


def load_items(
    paths: Sequence[str | Path], image_root: str | Path | None = None, limit: int | None = None
) -> list[UnderstandingItem]:
    items = []
    for path in find_files(paths, FILE_PATTERNS):
        for number, row in enumerate(read_table(path).to_dict("records")):
            split, question, answer, cell = _normalise_row(row, path)
            if split not in SPLITS or str(answer).strip().lower() not in ("yes", "no"):
                raise ValueError(
                    f"{path}:row {number}: split={split!r} answer={answer!r}; expected {SPLITS} / yes|no."
                )
            where = f"{path}:row {number}"
            items.append(
                UnderstandingItem(
                    id=f"{split}/{row.get('question_id', number)}",
                    question=f"{question}\n{INSTRUCTION}",
                    answer=answer.strip().lower(),
                    load_image=lambda c=cell, w=where: decode_image(c, image_root, where=w),
                    meta={"split": split},
                )
            )
    return items[:limit]


def official_yes_no(completion: str) -> str:
    """The official POPE rule: first sentence, commas dropped, split on spaces; "No"/"no"/"not" -> "no", else "yes".

    Applied to the answer span (a `<think>` part is dropped first), which is the whole text for a plain answer.
    """
    from rewards.reward_understand import answer_span

    text = answer_span(completion)
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if {"No", "no", "not"} & set(words) else "yes"


def binary_metrics(predictions: Sequence[str | None], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (positive = "yes") and yes-ratio, in %; `None` predictions are wrong."""
    tp = sum(p == "yes" and y == "yes" for p, y in zip(predictions, labels))
    fp = sum(p == "yes" and y == "no" for p, y in zip(predictions, labels))
    tn = sum(p == "no" and y == "no" for p, y in zip(predictions, labels))
    positives = sum(y == "yes" for y in labels)  # tp + fn
    return {
        "accuracy": percent(tp + tn, len(labels)),
        "precision": percent(tp, tp + fp),
        "recall": percent(tp, positives),
        "f1": percent(2 * tp, tp + fp + positives),  # 2PR / (P + R) = 2tp / (2tp + fp + fn)
        "yes_ratio": percent(sum(p == "yes" for p in predictions), len(labels)),
        "unparsed": sum(p is None for p in predictions),
        "count": len(labels),
    }


def _split_metrics(records: Sequence[dict[str, Any]], parse: Callable[[str], str | None]) -> dict[str, Any]:
    """Binary metrics per split with `parse` turning a completion into yes/no, and their means over the splits."""
    by_split: dict[str, tuple[list[str | None], list[str]]] = defaultdict(lambda: ([], []))
    for record in records:
        predictions, labels = by_split[record["split"]]
        predictions.append(parse(record["prediction"]))
        labels.append(record["answer"])
    splits = {split: binary_metrics(*by_split[split]) for split in SPLITS if split in by_split}
    return {
        "f1": round(sum(s["f1"] for s in splits.values()) / len(splits), 2) if splits else 0.0,
        "accuracy": round(sum(s["accuracy"] for s in splits.values()) / len(splits), 2) if splits else 0.0,
        "splits": splits,
    }


def score(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The official rule's metrics as the headline, the strict rule's under "strict"."""
    return {
        **_split_metrics(records, official_yes_no),
        "headline_rule": "official POPE: first sentence, no/not among its words -> no, else yes",
        "strict": _split_metrics(records, extract_yes_no),
    }


def results_table(result: BenchmarkResult) -> str:
    """The binary metrics per split, then the means over the splits."""
    keys = ["accuracy", "precision", "recall", "f1", "yes_ratio"]
    rows = [[split, *(m[k] for k in keys)] for split, m in result.metrics["splits"].items()]
    rows.append(["mean", result.metrics["accuracy"], None, None, result.metrics["f1"], None])
    strict = result.metrics["strict"]
    rows.append(["mean (strict rule)", strict["accuracy"], None, None, strict["f1"], None])
    return markdown_table(["POPE split", *keys], rows)


BENCHMARK = UnderstandingBenchmark(
    name="pope",
    headline_metric="f1",
    load_items=load_items,
    score=score,
    table=results_table,
    description=__doc__,
    data_help="POPE parquet files (lmms-lab/POPE data/) or coco_pope_<split>.json files",
    file_patterns=FILE_PATTERNS,
    loader_options={"image_root": "COCO val2014 folder (official POPE json files only)."},
)
