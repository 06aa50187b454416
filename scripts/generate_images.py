"""Generate images from text prompts with a Janus-Pro checkpoint: batched CFG sampling, PNGs + a metadata JSONL.

Usage:
    python scripts/generate_images.py --model_path deepseek-ai/Janus-Pro-1B --prompts prompts.txt --out_dir out/
Prompts: a .txt file (one per line) or a .jsonl file with a "prompt" field. Draws come from one generator seeded
with --seed, so they depend on --batch_size as well.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
from tqdm import tqdm

import janus
from janus.decode import decode_image_tokens, to_pil
from janus.sampling import sample_image_tokens

logger = logging.getLogger("generate_images")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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
    parser.add_argument(
        "--model_path", required=True, help="Local checkpoint folder (original or transformers format)."
    )
    parser.add_argument("--prompts", required=True, type=Path, help=".txt (one prompt per line) or .jsonl file.")
    parser.add_argument("--out_dir", required=True, type=Path, help="Folder for the PNGs and metadata.jsonl.")
    parser.add_argument("--cfg_weight", type=float, default=5.0, help="Classifier-free guidance weight (1 = none).")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature (> 0).")
    parser.add_argument("--top_k", type=int, default=None, help="Keep the k most likely tokens (default: all).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the sampling generator.")
    parser.add_argument("--num_images_per_prompt", type=int, default=1, help="Images sampled per prompt.")
    parser.add_argument("--batch_size", type=int, default=8, help="Images sampled together (bounds memory).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device.")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default=None, help="Default: bfloat16 on CUDA, else float32."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.batch_size < 1 or args.num_images_per_prompt < 1:
        raise ValueError("--batch_size and --num_images_per_prompt must be >= 1.")
    dtype = DTYPES[args.dtype] if args.dtype else (torch.bfloat16 if args.device.startswith("cuda") else torch.float32)
    prompts = read_prompts(args.prompts)
    model, processor = janus.load_pretrained(args.model_path, dtype=dtype, device=args.device)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    # One row per image to draw: (prompt index, sample index).
    jobs = [(p, s) for p in range(len(prompts)) for s in range(args.num_images_per_prompt)]
    logger.info("Sampling %d images for %d prompts into %s", len(jobs), len(prompts), args.out_dir)
    with (args.out_dir / "metadata.jsonl").open("w", encoding="utf-8") as metadata:
        for start in tqdm(range(0, len(jobs), args.batch_size), desc="batches"):
            chunk = jobs[start : start + args.batch_size]
            batch = processor.encode_generation([prompts[p] for p, _ in chunk]).to(args.device)
            samples = sample_image_tokens(
                model,
                batch,
                cfg_weight=args.cfg_weight,
                temperature=args.temperature,
                top_k=args.top_k,
                generator=generator,
            )
            images = to_pil(decode_image_tokens(model, samples.tokens))
            for (p, s), image in zip(chunk, images):
                name = f"{p:05d}_{s:02d}.png"
                image.save(args.out_dir / name)
                record = {"file": name, "prompt": prompts[p], "prompt_index": p, "sample_index": s}
                record |= {k: getattr(args, k) for k in ("seed", "cfg_weight", "temperature", "top_k", "batch_size")}
                metadata.write(json.dumps(record, ensure_ascii=False) + "\n")
    logger.info("Wrote %d images and metadata.jsonl to %s", len(jobs), args.out_dir)


if __name__ == "__main__":
    main()
