"""UniRL's imbalance metric (arXiv 2505.23380): how often the model cannot answer a question about its own good image.

Inputs: GenEval images in this repo's layout (`<images>/<index:05d>/samples/<i:04d>.png`, open_r1/evaluation/
geneval.py), the official scorer's per-image `results.jsonl` (evaluation/evaluate_images.py: `filename`, `tag`,
`prompt`, `correct`, `reason`, `metadata`, `details` per line) and a QA file in the UniRL authors' format
(`evaluation_metadata_qa.jsonl`: GenEval metadata + `question`, `answer`; data_tools/unirl_rows.py).
For every image the detector judged correct, the model answers the prompt's question greedily; imbalance = share of
those images whose answer is wrong, per GenEval tag and pooled over all images (the headline). Answers are
appended to `predictions.jsonl` as they come, so a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from data_tools.image_io import open_rgb
from data_tools.unirl_rows import SelfRow, read_self_rows
from open_r1.evaluation.common import (
    AnswerSettings,
    BenchmarkResult,
    PredictionLog,
    UnderstandingItem,
    add_answer_args,
    add_model_args,
    answer_items,
    answer_settings_from_args,
    check_limit,
    dtype_name,
    load_model,
    markdown_table,
    setup_logging,
    understanding_outputs,
)
from open_r1.evaluation.run_key import claim_out_dir, make_key
from rewards.reward_unirl import AnswerJudge, answer_is_correct

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredImage:
    """One line of the scorer's results: the image (resolved under the images folder) and the detector's verdict."""

    id: str  # "<index>/<sample>", e.g. "00012/0003"
    path: Path
    tag: str
    prompt: str
    correct: bool


def _scored_image(obj: Any, where: str, images_dir: Path) -> ScoredImage:
    if not isinstance(obj, dict) or not {"filename", "tag", "correct"} <= set(obj):
        raise ValueError(f"{where}: expected a GenEval scorer row with filename, tag, correct; pass its results.jsonl")
    parts = Path(str(obj["filename"])).parts
    # The scorer writes the path it globbed (<imagedir>/<index>/samples/<name>); only the last three parts are ours.
    if len(parts) < 3 or parts[-2] != "samples":
        raise ValueError(f"{where}: filename: {obj['filename']!r} is not <index>/samples/<image>; fix: score images "
                         "drawn with scripts/eval_geneval.py generate")  # fmt: skip
    prompt = obj.get("prompt") or json.loads(obj.get("metadata") or "{}").get("prompt", "")
    stem = Path(parts[-1]).stem
    return ScoredImage(f"{parts[-3]}/{stem}", images_dir / parts[-3] / "samples" / parts[-1], str(obj["tag"]),
                       prompt, _verdict(obj["correct"], where))  # fmt: skip


def _verdict(value: Any, where: str) -> bool:
    """The scorer's `correct`: a JSON boolean, 0/1, or the strings "true"/"false" (never `bool("false")`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{where}: correct: {value!r} is not a verdict; fix: write true or false")


def load_scored_images(results_path: str | Path, images_dir: str | Path) -> list[ScoredImage]:
    """Every line of the official scorer's `results.jsonl`."""
    lines = Path(results_path).read_text(encoding="utf-8").splitlines()
    return [
        _scored_image(json.loads(line), f"{results_path}:{number}", Path(images_dir))
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]


def question_items(
    images: Sequence[ScoredImage], qa_rows: Sequence[SelfRow], qa_path: str = "qa"
) -> list[UnderstandingItem]:
    """One question per correctly generated image, looked up by (tag, prompt) in the QA rows."""
    by_prompt = {(row.tag, " ".join(row.prompt.split())): row for row in qa_rows}
    items = []
    for image in images:
        if not image.correct:
            continue
        row = by_prompt.get((image.tag, " ".join(image.prompt.split())))
        if row is None:
            raise ValueError(f"{qa_path}: no question for tag {image.tag!r}, prompt {image.prompt!r} (image "
                             f"{image.id}); fix: use the QA file of the same GenEval prompts")  # fmt: skip
        items.append(UnderstandingItem(
            id=image.id, question=row.question, answer=row.answer,
            load_image=partial(open_rgb, image.path), meta={"tag": image.tag, "prompt": image.prompt},
        ))  # fmt: skip
    return items


def imbalance_metrics(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per tag and "overall": correctly generated images, how many were answered wrong, and their share.

    Records the LLM judge gave no verdict (`answer_correct` None) are left out, and counted in the log.
    """
    unjudged = sum(record["answer_correct"] is None for record in records)
    if unjudged:
        logger.warning("%d answer(s) without a judge verdict are left out of the imbalance", unjudged)
    records = [record for record in records if record["answer_correct"] is not None]
    groups: dict[str, list[bool]] = {}
    for record in records:
        groups.setdefault(record["tag"], []).append(bool(record["answer_correct"]))
    groups["overall"] = [ok for record in records for ok in [bool(record["answer_correct"])]]
    return {
        tag: {"correct_images": len(oks), "answered_wrong": oks.count(False),
              "imbalance": oks.count(False) / len(oks) if oks else 0.0}
        for tag, oks in groups.items()
    }  # fmt: skip


def grade(records: Sequence[dict[str, Any]], llm_judge: AnswerJudge | None = None) -> list[dict[str, Any]]:
    """Add `answer_correct` to each prediction record (question, answer = gold, prediction)."""
    return [
        {**r, "answer_correct": answer_is_correct(r["prediction"], r["answer"], r["question"], llm_judge)}
        for r in records
    ]


def run_imbalance(
    answer: Callable[[list[UnderstandingItem], PredictionLog], list[dict[str, Any]]],
    results_path: str | Path,
    images_dir: str | Path,
    qa_path: str | Path,
    out_dir: str | Path,
    llm_judge: AnswerJudge | None = None,
    model_name: str = "",
    limit: int | None = None,
) -> BenchmarkResult:
    """Answer the questions of correctly generated images with `answer(items, log)` and score the imbalance."""
    images = load_scored_images(results_path, images_dir)
    items = question_items(images, read_self_rows(qa_path), str(qa_path))[:limit]
    logger.info("%d of %d images are correct by the GenEval scorer", len(items), len(images))
    records = grade(answer(items, PredictionLog(Path(out_dir) / "predictions.jsonl")), llm_judge)
    metrics = imbalance_metrics(records)
    return BenchmarkResult(
        benchmark="unirl_imbalance", model=model_name, headline_metric="imbalance",
        headline=metrics["overall"]["imbalance"], num_samples=len(records), metrics=metrics,
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="UniRL imbalance on GenEval images (see module docstring).")
    add_model_args(parser)
    parser.add_argument("--images", required=True, help="GenEval images folder (scripts/eval_geneval.py generate)")
    parser.add_argument("--results", required=True, help="results.jsonl of GenEval's evaluate_images.py")
    parser.add_argument("--qa", required=True, help="QA file (UniRL's evaluation_metadata_qa.jsonl format)")
    parser.add_argument("--judge_model", default=None, help="Optional LLM judge for free-form answers")
    parser.add_argument("--judge_base_url", default=None)
    parser.add_argument("--judge_cache", default=None, help="Cache folder of the LLM judge (default: out_dir/judge)")
    add_answer_args(parser)
    parser.set_defaults(max_new_tokens=32)
    return parser


def main(argv: Sequence[str] | None = None) -> BenchmarkResult:
    """The CLI: same run key and output-folder rules as the benchmark drivers (resume only the same run)."""
    setup_logging()
    args = build_parser().parse_args(argv)
    settings: AnswerSettings = answer_settings_from_args(args)
    check_limit(args.limit)
    recorded = {
        **settings.key_fields(),
        "limit": args.limit,
        "dtype": dtype_name(args),
        "judge_model": args.judge_model,
    }
    key = make_key("unirl_imbalance", args.model_path, [args.results, args.qa], recorded)
    with claim_out_dir(args.out_dir, key, understanding_outputs, args.overwrite):
        judge = None
        if args.judge_model:
            from rewards.answer_judge import LLMAnswerJudge

            judge = LLMAnswerJudge(args.judge_model, args.judge_cache or str(Path(args.out_dir) / "judge"),
                                   base_url=args.judge_base_url)  # fmt: skip
            judge.check_model()  # before the model loads
        model, backbone = load_model(args.model_path, args.device, args.dtype, args.backbone)
        result = run_imbalance(
            lambda items, log: answer_items(model, backbone, items, log, settings),
            args.results, args.images, args.qa, args.out_dir, judge, model_name=key["model"]["path"], limit=args.limit,
        )  # fmt: skip
        result.settings = key["settings"]
        result.save(args.out_dir)
    return result


def summary(result: BenchmarkResult, out_dir: str | Path) -> str:
    """The table and the files written, for the CLI to print."""
    rows = [
        (tag, m["correct_images"], m["answered_wrong"], round(m["imbalance"], 4)) for tag, m in result.metrics.items()
    ]
    out = Path(out_dir)
    table = markdown_table(["tag", "correct images", "answered wrong", "imbalance"], rows)
    return f"{table}\nwrote {out / 'predictions.jsonl'} and {out / 'results.json'}"


__all__ = ["summary", "ScoredImage", "imbalance_metrics", "load_scored_images", "question_items", "run_imbalance"]
