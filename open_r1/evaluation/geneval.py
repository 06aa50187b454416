"""GenEval: draw images for `evaluation_metadata.jsonl` in the folder layout the official GenEval scorer reads,
and summarise the scorer's `results.jsonl`.

Layout (what GenEval's own generation script writes; `evaluation/evaluate_images.py` globs it unchanged):
    <out>/<index:05d>/metadata.jsonl        the prompt's metadata line (one JSON object)
    <out>/<index:05d>/samples/<i:04d>.png   `samples_per_prompt` images (4 by default)
    <out>/<index:05d>/grid.png              optional
`<out>/run_key.json` records the run (model, metadata hash, sampling settings); a rerun with another key is refused.
Object detection and scoring (mmdet 2.x + Mask2Former) stay in the official repository; not re-implemented here.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from open_r1.evaluation.common import (
    BenchmarkResult,
    GenerationJob,
    GenerationSettings,
    add_checkpoint_args,
    add_generation_args,
    atomic_write_text,
    check_limit,
    dtype_name,
    generate_jobs,
    generation_settings_from_args,
    is_main_process,
    load_model,
    markdown_table,
    model_path_of,
    read_jsonl_objects,
    save_png,
    setup_logging,
)
from open_r1.evaluation.run_key import claim_out_dir, make_key

if TYPE_CHECKING:
    import torch

    from backbones import Backbone

logger = logging.getLogger(__name__)


def load_metadata(path: str | Path) -> list[dict[str, Any]]:
    """GenEval's `evaluation_metadata.jsonl`: one JSON object per line with at least `prompt` (and `tag`)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--metadata {path} does not exist; pass GenEval's prompts/evaluation_metadata.jsonl.")
    rows = []
    for where, row in read_jsonl_objects(path):
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise ValueError(f"{where}: field 'prompt' must be a non-empty string; is this GenEval metadata?")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no prompts; pass GenEval's prompts/evaluation_metadata.jsonl.")
    return rows


def prompt_folder(out_dir: str | Path, index: int) -> Path:
    return Path(out_dir) / f"{index:05d}"


def sample_path(folder: Path, sample: int) -> Path:
    return folder / "samples" / f"{sample:04d}.png"


def metadata_text(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, ensure_ascii=False)


def is_complete(folder: Path, metadata: dict[str, Any], samples_per_prompt: int, grid: bool) -> bool:
    """All sample images (and the grid when asked for) exist and metadata.jsonl holds this prompt's metadata."""
    meta_path = folder / "metadata.jsonl"
    if not meta_path.is_file() or meta_path.read_text(encoding="utf-8").strip() != metadata_text(metadata):
        return False
    if grid and not (folder / "grid.png").is_file():
        return False
    return all(sample_path(folder, i).is_file() for i in range(samples_per_prompt))


def make_grid(images: Sequence[Image.Image], columns: int) -> Image.Image:
    """Tile equally sized images row by row into one image."""
    width, height = images[0].size
    rows = -(-len(images) // columns)
    grid = Image.new("RGB", (columns * width, rows * height))
    for i, image in enumerate(images):
        grid.paste(image, ((i % columns) * width, (i // columns) * height))
    return grid


def write_prompt(folder: Path, metadata: dict[str, Any], images: Sequence[Image.Image], grid: bool) -> None:
    """Samples first, metadata.jsonl last: a folder with metadata but missing samples can only be a crash."""
    for i, image in enumerate(images):
        save_png(image, sample_path(folder, i))
    if grid:
        save_png(make_grid(images, columns=min(len(images), 4)), folder / "grid.png")
    atomic_write_text(folder / "metadata.jsonl", metadata_text(metadata) + "\n")


def build_jobs(
    metadata: Sequence[dict[str, Any]], out_dir: str | Path, samples_per_prompt: int, grid: bool
) -> list[GenerationJob]:
    jobs = []
    for index, meta in enumerate(metadata):
        folder = prompt_folder(out_dir, index)
        jobs.append(
            GenerationJob(
                index=index,
                prompt=meta["prompt"],
                is_done=lambda f=folder, m=meta: is_complete(f, m, samples_per_prompt, grid),
                write=lambda images, f=folder, m=meta: write_prompt(f, m, images, grid),
            )
        )
    return jobs


def prompt_folders(out_dir: Path) -> list[Path]:
    """The `<index:05d>` folders of a GenEval output folder (what --overwrite deletes)."""
    return sorted(p for p in out_dir.iterdir() if p.is_dir() and p.name.isdigit())


def run_key(
    model_path: str | Path,
    metadata_path: str | Path,
    settings: GenerationSettings,
    grid: bool,
    limit: int | None,
    dtype: str,
) -> dict[str, Any]:
    recorded = {**settings.key_fields(), "grid": grid, "limit": limit, "dtype": dtype}
    return make_key("geneval", model_path, [metadata_path], recorded)


def run_geneval(
    model: torch.nn.Module,
    backbone: Backbone,
    metadata_path: str | Path,
    out_dir: str | Path,
    settings: GenerationSettings,
    grid: bool = False,
    limit: int | None = None,
    model_path: str | Path | None = None,
    overwrite: bool = False,
) -> int:
    """Draw every incomplete prompt of the metadata file into `out_dir` (resuming only the same run, see
    `run_key`); returns how many prompts were drawn."""
    check_limit(limit)
    metadata = load_metadata(metadata_path)[:limit]
    key = run_key(model_path or model_path_of(model), metadata_path, settings, grid, limit, dtype_name(model))
    with claim_out_dir(out_dir, key, prompt_folders, overwrite):
        return _draw(model, backbone, metadata, out_dir, settings, grid)


def _draw(
    model: torch.nn.Module,
    backbone: Backbone,
    metadata: Sequence[dict[str, Any]],
    out_dir: str | Path,
    settings: GenerationSettings,
    grid: bool,
) -> int:
    jobs = build_jobs(metadata, out_dir, settings.samples_per_prompt, grid)
    drawn = generate_jobs(model, backbone, jobs, settings)
    logger.info("GenEval: %d prompts drawn, %d already complete, in %s", drawn, len(jobs) - drawn, out_dir)
    return drawn


def summarize_results(results_path: str | Path, model: str = "") -> BenchmarkResult:
    """Score GenEval's `results.jsonl` (from evaluate_images.py) as its summary_scores.py does: accuracy per tag
    (over images), overall = mean over tags."""
    by_tag: dict[str, list[bool]] = {}
    for where, row in read_jsonl_objects(results_path):
        tag, correct = row.get("tag"), row.get("correct")
        if not isinstance(tag, str) or not isinstance(correct, bool):
            raise ValueError(
                f"{where}: fields 'tag' (string) and 'correct' (true/false) expected, got tag={tag!r} "
                f"correct={correct!r}; pass the results.jsonl written by GenEval's evaluate_images.py."
            )
        by_tag.setdefault(tag, []).append(correct)
    if not by_tag:
        raise ValueError(f"{results_path}: no scored images; run GenEval's evaluate_images.py first.")
    per_tag = {tag: sum(v) / len(v) for tag, v in by_tag.items()}
    overall = sum(per_tag.values()) / len(per_tag)
    images = [ok for v in by_tag.values() for ok in v]
    return BenchmarkResult(
        benchmark="geneval",
        model=model,
        headline_metric="overall",
        headline=round(overall, 4),
        num_samples=len(images),
        metrics={
            "overall": round(overall, 4),
            "image_accuracy": round(sum(images) / len(images), 4),
            "per_tag": {k: round(v, 4) for k, v in per_tag.items()},
        },
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="Draw images for every GenEval prompt (resumable).")
    add_checkpoint_args(generate)
    generate.add_argument("--metadata", required=True, help="GenEval prompts/evaluation_metadata.jsonl")
    generate.add_argument("--out_dir", required=True)
    generate.add_argument("--grid", action="store_true", help="Also write grid.png per prompt.")
    generate.add_argument("--limit", type=int, default=None, help="Only the first N prompts (part of the run key).")
    generate.add_argument("--overwrite", action="store_true", help="Delete another run's images in --out_dir first.")
    add_generation_args(generate, samples_per_prompt=4)
    summarize = commands.add_parser("summarize", help="Summarise the official scorer's results.jsonl.")
    summarize.add_argument("--results", required=True, help="results.jsonl written by evaluate_images.py")
    summarize.add_argument("--out_dir", required=True, help="Where results.json goes (for compare_runs).")
    summarize.add_argument("--model_name", default="")
    return parser


def generate(args: argparse.Namespace) -> str:
    """The `generate` command: data and output folder checked before the model loads; returns the summary."""
    check_limit(args.limit)
    settings = generation_settings_from_args(args)
    metadata = load_metadata(args.metadata)[: args.limit]
    key = run_key(args.model_path, args.metadata, settings, args.grid, args.limit, dtype_name(args))
    with claim_out_dir(args.out_dir, key, prompt_folders, args.overwrite):
        model, backbone = load_model(args.model_path, args.device, args.dtype, args.backbone)
        drawn = _draw(model, backbone, metadata, args.out_dir, settings, args.grid)
    return (
        f"GenEval: {drawn} prompts drawn, {len(metadata) - drawn} already complete; {len(metadata)} prompt folders "
        f"(<index>/samples/*.png, {settings.samples_per_prompt} per prompt) in {args.out_dir}. Score them with "
        "GenEval's evaluation/evaluate_images.py, then `eval_geneval.py summarize`."
    )


def main(argv: Sequence[str] | None = None) -> str | None:
    """The CLI; returns the closing summary the script prints (None on non-main ranks)."""
    setup_logging()
    args = build_parser().parse_args(argv)
    if args.command == "generate":
        summary = generate(args)
    else:
        result = summarize_results(args.results, args.model_name)
        path = result.save(args.out_dir)
        rows = [[tag, score] for tag, score in result.metrics["per_tag"].items()] + [["overall", result.headline]]
        summary = (
            f"{markdown_table(['GenEval task', 'score'], rows)}\nGenEval overall = {result.headline:.4f} over "
            f"{result.num_samples} images; wrote {path}"
        )
    return summary if is_main_process() else None
