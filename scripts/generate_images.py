"""Generate images from text prompts with a Janus-Pro checkpoint: batched CFG sampling, PNGs + a metadata JSONL.

Usage:
    python scripts/generate_images.py --model_path checkpoints/Janus-Pro-1B --prompts prompts.txt --out_dir out/
Prompts: a .txt file (one per line) or a .jsonl file with a "prompt" field. Every image draws from its own generator
seeded from (--seed, prompt index, sample index), so an image does not depend on --batch_size or on the other prompts.
`<out_dir>/run_key.json` records the run: rerunning it resumes (missing PNGs only); another model, prompt file or
setting is refused unless --overwrite (which deletes the previous PNGs), so no stale image stays behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import torch

from backbones import ImageSampling
from backbones.interface import to_pil
from janus.sampling import image_seed
from open_r1.evaluation.common import (
    add_checkpoint_args,
    add_decode_arg,
    atomic_write_text,
    dtype_name,
    is_main_process,
    load_model,
    model_device,
    progress,
    read_jsonl_objects,
    save_png,
    setup_logging,
    warn_if_too_long,
)
from open_r1.evaluation.run_key import claim_out_dir, make_key

logger = logging.getLogger("generate_images")
IMAGE_NAME = re.compile(r"\d{5}_\d{2}\.png")


def read_prompts(path: Path) -> list[str]:
    """Prompts from a .txt (one per non-empty line) or .jsonl (a "prompt" field per line) file."""
    if not path.is_file():
        raise FileNotFoundError(f"--prompts {path} does not exist; pass a .txt or .jsonl file.")
    if path.suffix == ".txt":
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        prompts = []
        for where, record in read_jsonl_objects(path):
            if not isinstance(record.get("prompt"), str):
                raise ValueError(f"{where}: field 'prompt' is missing or not a string; add it.")
            prompts.append(record["prompt"])
        return prompts
    raise ValueError(f"--prompts {path} has suffix {path.suffix!r}; use .txt (one prompt per line) or .jsonl.")


def image_name(prompt_index: int, sample_index: int) -> str:
    return f"{prompt_index:05d}_{sample_index:02d}.png"


def written_outputs(out_dir: Path) -> list[Path]:
    """The PNGs and metadata.jsonl this script writes (what --overwrite deletes)."""
    files = [p for p in out_dir.glob("*.png") if IMAGE_NAME.fullmatch(p.name)]
    return sorted(files) + [p for p in [out_dir / "metadata.jsonl"] if p.is_file()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_args(parser)
    parser.add_argument("--prompts", required=True, type=Path, help=".txt (one prompt per line) or .jsonl file.")
    parser.add_argument("--out_dir", required=True, type=Path, help="Folder for the PNGs and metadata.jsonl.")
    parser.add_argument("--cfg_weight", type=float, default=5.0, help="Classifier-free guidance weight (1 = none).")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature (> 0).")
    parser.add_argument("--top_k", type=int, default=None, help="Keep the k most likely tokens (default: all).")
    parser.add_argument(
        "--seed", type=int, default=0, help="Base seed; image s of prompt p uses a generator seeded from (seed, p, s)."
    )
    parser.add_argument("--num_images_per_prompt", type=int, default=1, help="Images sampled per prompt.")
    parser.add_argument(
        "--batch_size", type=int, default=8, help="Images sampled together (bounds memory; does not change images)."
    )
    parser.add_argument("--overwrite", action="store_true", help="Delete another run's images in --out_dir first.")
    add_decode_arg(parser)
    return parser.parse_args(argv)


def draw(model, backbone, prompts: list[str], jobs: list[tuple[int, int]], args: argparse.Namespace) -> None:
    """Sample and save the image of every (prompt index, sample index) in `jobs`, `--batch_size` at a time."""
    device = model_device(model)
    options = ImageSampling(
        cfg_weight=args.cfg_weight, temperature=args.temperature, top_k=args.top_k, decode=args.rollout_decode
    )
    with progress(len(jobs), "drawing", "image") as bar:
        for start in range(0, len(jobs), args.batch_size):
            chunk = jobs[start : start + args.batch_size]
            generators = [torch.Generator(device=device).manual_seed(image_seed(args.seed, p, s)) for p, s in chunk]
            with torch.no_grad():
                images = backbone.sample_images(
                    model, [prompts[p] for p, _ in chunk], options, generators, decode=False
                )  # decoded one image at a time below
                tokens = images.rollout.completion_ids
                warn_if_too_long(
                    model, images.rollout.record["input_ids"].shape[1], tokens.shape[1], f"prompt {chunk[0][0]}"
                )
                # One image per decode: a VQ decoder's float output moves with its batch size (~1e-6, enough to flip
                # a rounded pixel), and decoding is cheap next to sampling the image tokens.
                for (p, s), row in zip(chunk, tokens):
                    pixels = backbone.decode_images(model, row.unsqueeze(0))
                    save_png(to_pil(pixels.float().cpu())[0], args.out_dir / image_name(p, s))
            bar.update(len(chunk))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    if args.batch_size < 1 or args.num_images_per_prompt < 1:
        raise ValueError("--batch_size and --num_images_per_prompt must be >= 1.")
    prompts = read_prompts(args.prompts)
    if not prompts:
        raise ValueError(f"--prompts {args.prompts} holds no prompts; add one per line.")
    settings = {k: getattr(args, k) for k in ("seed", "cfg_weight", "temperature", "top_k", "num_images_per_prompt")}
    key = make_key("generate_images", args.model_path, [args.prompts], {**settings, "dtype": dtype_name(args)})
    with claim_out_dir(args.out_dir, key, written_outputs, args.overwrite):
        # One row per image: (prompt index, sample index); a resumed run draws only the missing PNGs.
        jobs = [(p, s) for p in range(len(prompts)) for s in range(args.num_images_per_prompt)]
        todo = [(p, s) for p, s in jobs if not (args.out_dir / image_name(p, s)).is_file()]
        logger.info(
            "Sampling %d of %d images for %d prompts into %s", len(todo), len(jobs), len(prompts), args.out_dir
        )
        if todo:
            model, backbone = load_model(args.model_path, args.device, args.dtype, args.backbone)
            draw(model, backbone, prompts, todo, args)
        records = [
            {"file": image_name(p, s), "prompt": prompts[p], "prompt_index": p, "sample_index": s} | settings
            for p, s in jobs
        ]
        atomic_write_text(
            args.out_dir / "metadata.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        )
    if is_main_process():
        print(
            f"Wrote {len(todo)} new images ({len(jobs) - len(todo)} already there) and metadata.jsonl to {args.out_dir}"
        )


if __name__ == "__main__":
    main()
