"""WISE: draw one image per prompt of WISE's prompt files as `<out>/<prompt_id>.png`, the names its GPT-4o scorer
(`gpt_eval.py --image_dir <out>`) reads.

The prompt files are `data/cultural_common_sense.json`, `data/spatio-temporal_reasoning.json` and
`data/natural_science.json`, each a JSON list of {"prompt_id", "Prompt", ...}; ids are unique across the three
(1-1000). `<out>/run_key.json` records the run (model, prompt file hashes, sampling settings); a rerun with another
key is refused. Scoring (GPT-4o judging, WiScore) needs the OpenAI API and stays in the official repository.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from open_r1.evaluation.common import (
    GenerationJob,
    GenerationSettings,
    add_checkpoint_args,
    add_generation_args,
    check_limit,
    dtype_name,
    generate_jobs,
    generation_settings_from_args,
    is_main_process,
    load_model,
    model_path_of,
    save_png,
    setup_logging,
)
from open_r1.evaluation.run_key import claim_out_dir, make_key

if TYPE_CHECKING:
    import torch

    from backbones import Backbone

logger = logging.getLogger(__name__)


def load_prompts(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """All prompts of the given WISE JSON files, sorted by prompt_id; ids must be unique integers."""
    prompts: dict[int, dict[str, Any]] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise ValueError(f"--prompts {path} does not exist; pass WISE's data/*.json files.")
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg}); pass WISE's data/*.json.") from None
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of prompts (WISE data/*.json).")
        for position, row in enumerate(rows):
            where = f"{path}[{position}]"
            if not isinstance(row, dict):
                raise ValueError(
                    f"{where}: expected an object with 'prompt_id' and 'Prompt', got {type(row).__name__} {row!r:.60}."
                )
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


def prompt_images(out_dir: Path) -> list[Path]:
    """The `<prompt_id>.png` files of a WISE output folder (what --overwrite deletes; the scorer's Results/ stay)."""
    return sorted(p for p in out_dir.glob("*.png") if p.stem.isdigit())


def checked_prompts(
    prompt_files: Sequence[str | Path], settings: GenerationSettings, limit: int | None
) -> list[dict[str, Any]]:
    if settings.samples_per_prompt != 1:
        raise ValueError(f"samples_per_prompt={settings.samples_per_prompt}: WISE scores one image per prompt; use 1.")
    check_limit(limit)
    return load_prompts(prompt_files)[:limit]


def run_key(
    model_path: str | Path,
    prompt_files: Sequence[str | Path],
    settings: GenerationSettings,
    limit: int | None,
    dtype: str,
) -> dict[str, Any]:
    return make_key("wise", model_path, prompt_files, {**settings.key_fields(), "limit": limit, "dtype": dtype})


def run_wise(
    model: torch.nn.Module,
    backbone: Backbone,
    prompt_files: Sequence[str | Path],
    out_dir: str | Path,
    settings: GenerationSettings,
    limit: int | None = None,
    model_path: str | Path | None = None,
    overwrite: bool = False,
) -> int:
    """Draw one image for every prompt without `<out>/<prompt_id>.png` (resuming only the same run); returns how
    many prompts were drawn."""
    prompts = checked_prompts(prompt_files, settings, limit)
    key = run_key(model_path or model_path_of(model), prompt_files, settings, limit, dtype_name(model))
    with claim_out_dir(out_dir, key, prompt_images, overwrite):
        return _draw(model, backbone, prompts, out_dir, settings)


def _draw(
    model: torch.nn.Module,
    backbone: Backbone,
    prompts: Sequence[dict[str, Any]],
    out_dir: str | Path,
    settings: GenerationSettings,
) -> int:
    jobs = build_jobs(prompts, out_dir)
    drawn = generate_jobs(model, backbone, jobs, settings)
    logger.info("WISE: %d prompts drawn, %d already present, in %s", drawn, len(jobs) - drawn, out_dir)
    return drawn


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_args(parser)
    parser.add_argument("--prompts", nargs="+", required=True, help="WISE data/*.json prompt files")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--limit", type=int, default=None, help="Only the first N prompts (part of the run key).")
    parser.add_argument("--overwrite", action="store_true", help="Delete another run's images in --out_dir first.")
    add_generation_args(parser, samples_per_prompt=1)
    return parser


def main(argv: Sequence[str] | None = None) -> str | None:
    """The CLI: prompts and output folder checked before the model loads; returns the closing summary the script
    prints (None on non-main ranks)."""
    setup_logging()
    args = build_parser().parse_args(argv)
    settings = generation_settings_from_args(args)
    prompts = checked_prompts(args.prompts, settings, args.limit)
    key = run_key(args.model_path, args.prompts, settings, args.limit, dtype_name(args))
    with claim_out_dir(args.out_dir, key, prompt_images, args.overwrite):
        model, backbone = load_model(args.model_path, args.device, args.dtype, args.backbone)
        drawn = _draw(model, backbone, prompts, args.out_dir, settings)
    if not is_main_process():
        return None
    return (
        f"WISE: {drawn} prompts drawn, {len(prompts) - drawn} already present; {len(prompts)} images "
        f"<prompt_id>.png in {args.out_dir}. Score them with WISE's gpt_eval.py --image_dir {args.out_dir}."
    )
