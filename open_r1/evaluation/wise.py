"""WISE: draw one image per prompt of WISE's prompt files as `<out>/<prompt_id>.png`, the names its GPT-4o scorer
(`gpt_eval.py --image_dir <out>`) reads.

The prompt files are `data/cultural_common_sense.json`, `data/spatio-temporal_reasoning.json` and
`data/natural_science.json`, each a JSON list of {"prompt_id", "Prompt", ...}; ids are unique across the three
(1-1000). Scoring (GPT-4o judging, WiScore) needs the OpenAI API and stays in the official repository.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from open_r1.evaluation.common import (
    DTYPES,
    GenerationJob,
    GenerationSettings,
    add_generation_args,
    generate_jobs,
    generation_settings_from_args,
    load_model,
    save_png,
    setup_logging,
)

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration

    from janus import JanusProcessor

logger = logging.getLogger(__name__)


def load_prompts(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """All prompts of the given WISE JSON files, sorted by prompt_id; ids must be unique integers."""
    prompts: dict[int, dict[str, Any]] = {}
    for path in map(Path, paths):
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of prompts (WISE data/*.json).")
        for position, row in enumerate(rows):
            where = f"{path}[{position}]"
            if not isinstance(row.get("Prompt"), str) or not row["Prompt"].strip():
                raise ValueError(f"{where}: field 'Prompt' must be a non-empty string.")
            try:
                prompt_id = int(row["prompt_id"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f"{where}: field 'prompt_id' must be an integer, got {row.get('prompt_id')!r}."
                ) from None
            if prompt_id in prompts:
                raise ValueError(f"{where}: prompt_id {prompt_id} appears twice; pass each WISE file once.")
            prompts[prompt_id] = {**row, "prompt_id": prompt_id}
    return [prompts[k] for k in sorted(prompts)]


def image_path(out_dir: str | Path, prompt_id: int) -> Path:
    return Path(out_dir) / f"{prompt_id}.png"


def build_jobs(prompts: Sequence[dict[str, Any]], out_dir: str | Path) -> list[GenerationJob]:
    jobs = []
    for row in prompts:
        path = image_path(out_dir, row["prompt_id"])
        jobs.append(
            GenerationJob(
                index=row["prompt_id"],  # the seed follows the prompt id, not the file order
                prompt=row["Prompt"],
                is_done=path.is_file,
                write=lambda images, p=path: save_png(images[0], p),
            )
        )
    return jobs


def run_wise(
    model: JanusForConditionalGeneration,
    processor: JanusProcessor,
    prompt_files: Sequence[str | Path],
    out_dir: str | Path,
    settings: GenerationSettings,
    limit: int | None = None,
) -> int:
    """Draw one image for every prompt without `<out>/<prompt_id>.png`; returns how many prompts were drawn."""
    if settings.samples_per_prompt != 1:
        raise ValueError(f"samples_per_prompt={settings.samples_per_prompt}: WISE scores one image per prompt; use 1.")
    jobs = build_jobs(load_prompts(prompt_files)[:limit], out_dir)
    drawn = generate_jobs(model, processor, jobs, settings)
    logger.info("WISE: %d prompts drawn, %d already present, in %s", drawn, len(jobs) - drawn, out_dir)
    return drawn


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", required=True)
    parser.add_argument("--prompts", nargs="+", required=True, help="WISE data/*.json prompt files")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES))
    parser.add_argument("--limit", type=int, default=None)
    add_generation_args(parser, samples_per_prompt=1)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    model, processor = load_model(args.model_path, args.device, args.dtype)
    run_wise(model, processor, args.prompts, args.out_dir, generation_settings_from_args(args), args.limit)
