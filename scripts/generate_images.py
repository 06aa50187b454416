"""Generate images from text prompts with a Janus-Pro checkpoint: batched CFG sampling, PNGs + a metadata JSONL.

Usage:
    python scripts/generate_images.py --model_path deepseek-ai/Janus-Pro-1B --prompts prompts.txt --out_dir out/
Prompts: a .txt file (one per line) or a .jsonl file with a "prompt" field. Every image draws from its own generator
seeded from (--seed, prompt index, sample index), so an image does not depend on --batch_size or on the other prompts.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
from tqdm import tqdm

from janus.decode import decode_image_tokens, to_pil
from janus.sampling import image_seed, sample_image_tokens
from open_r1.evaluation.common import add_checkpoint_args, load_model, model_device, setup_logging

logger = logging.getLogger("generate_images")


def read_prompts(path: Path) -> list[str]:
    """Prompts from a .txt (one per non-empty line) or .jsonl (a "prompt" field per line) file."""
    if not path.is_file():
        raise FileNotFoundError(f"--prompts {path} does not exist; pass a .txt or .jsonl file.")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if path.suffix == ".txt":
        return [line for line in lines if line]
    if path.suffix == ".jsonl":
        prompts = []
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            record = json.loads(line)
            if not isinstance(record.get("prompt"), str):
                raise ValueError(f"{path}:{number}: field 'prompt' is missing or not a string; add it.")
            prompts.append(record["prompt"])
        return prompts
    raise ValueError(f"--prompts {path} has suffix {path.suffix!r}; use .txt (one prompt per line) or .jsonl.")


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    if args.batch_size < 1 or args.num_images_per_prompt < 1:
        raise ValueError("--batch_size and --num_images_per_prompt must be >= 1.")
    prompts = read_prompts(args.prompts)
    model, processor = load_model(args.model_path, args.device, args.dtype)
    device = model_device(model)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    # One row per image to draw: (prompt index, sample index).
    jobs = [(p, s) for p in range(len(prompts)) for s in range(args.num_images_per_prompt)]
    logger.info("Sampling %d images for %d prompts into %s", len(jobs), len(prompts), args.out_dir)
    with (args.out_dir / "metadata.jsonl").open("w", encoding="utf-8") as metadata:
        for start in tqdm(range(0, len(jobs), args.batch_size), desc="batches"):
            chunk = jobs[start : start + args.batch_size]
            batch = processor.encode_generation([prompts[p] for p, _ in chunk]).to(device)
            samples = sample_image_tokens(
                model,
                batch,
                cfg_weight=args.cfg_weight,
                temperature=args.temperature,
                top_k=args.top_k,
                generator=[torch.Generator(device=device).manual_seed(image_seed(args.seed, p, s)) for p, s in chunk],
            )
            # One image per decode: the VQ decoder's float output moves with its batch size (~1e-6, enough to flip a
            # rounded pixel), and decoding is cheap next to sampling the image tokens.
            images = [to_pil(decode_image_tokens(model, tokens.unsqueeze(0)))[0] for tokens in samples.tokens]
            for (p, s), image in zip(chunk, images):
                name = f"{p:05d}_{s:02d}.png"
                image.save(args.out_dir / name)
                record = {"file": name, "prompt": prompts[p], "prompt_index": p, "sample_index": s}
                record |= {k: getattr(args, k) for k in ("seed", "cfg_weight", "temperature", "top_k", "batch_size")}
                metadata.write(json.dumps(record, ensure_ascii=False) + "\n")
    logger.info("Wrote %d images and metadata.jsonl to %s", len(jobs), args.out_dir)


if __name__ == "__main__":
    main()
