"""Answer questions about images with a Janus-Pro checkpoint: JSONL of image_path + question -> JSONL with answers.

Usage:
    python scripts/answer_questions.py --model_path checkpoints/Janus-Pro-1B --input q.jsonl --output a.jsonl
Each input line needs "image_path" (absolute, or relative to --image_root, default: the input file's folder) and
"question"; every input field is kept and "answer" is added. Greedy decoding unless --do_sample. The output is
written once, atomically, when every answer is in: a crash leaves an existing file as it was. An existing --output is
replaced only with --overwrite, and never when it is the --input.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from backbones import AnswerSampling
from open_r1.evaluation.common import (
    add_checkpoint_args,
    add_decode_arg,
    atomic_write_text,
    decode_image,
    is_main_process,
    load_model,
    model_device,
    progress,
    read_jsonl_objects,
    setup_logging,
    warn_if_too_long,
)

logger = logging.getLogger("answer_questions")


def read_questions(path: Path, image_root: Path) -> list[dict]:
    """Records with "image_path" resolved against `image_root` and a "question"; errors name file:line:field."""
    if not path.is_file():
        raise FileNotFoundError(f"--input {path} does not exist; pass a JSONL file of image_path + question.")
    records = []
    for where, record in read_jsonl_objects(path):
        for field in ("image_path", "question"):
            if not isinstance(record.get(field), str):
                raise ValueError(f"{where}: field {field!r} is missing or not a string; add it.")
        image_path = Path(record["image_path"])
        image_path = image_path if image_path.is_absolute() else image_root / image_path
        if not image_path.is_file():
            raise FileNotFoundError(f"{where}: image_path {image_path} does not exist; fix it or --image_root.")
        records.append(record | {"_resolved_image": str(image_path), "_where": where})
    if not records:
        raise ValueError(f"--input {path} holds no questions; add one JSON object per line.")
    return records


def check_output(args: argparse.Namespace) -> None:
    """Refuse to write over the input, or over an existing file without --overwrite."""
    if args.output.resolve() == args.input.resolve():
        raise ValueError(f"--output {args.output} is the --input file; write the answers to another file.")
    if args.output.exists() and not args.overwrite:
        raise ValueError(f"--output {args.output} exists; pass --overwrite to replace it, or choose another file.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_args(parser)
    parser.add_argument("--input", required=True, type=Path, help="JSONL with image_path and question fields.")
    parser.add_argument("--output", required=True, type=Path, help="JSONL written with an added answer field.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing --output.")
    parser.add_argument("--image_root", type=Path, default=None, help="Base of relative image paths.")
    parser.add_argument("--max_new_tokens", type=int, default=256, help="Answer length limit.")
    parser.add_argument("--do_sample", action="store_true", help="Sample instead of greedy decoding.")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature (> 0).")
    parser.add_argument("--top_p", type=float, default=1.0, help="Nucleus sampling mass.")
    parser.add_argument("--top_k", type=int, default=None, help="Keep the k most likely tokens (default: all).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the sampling generator.")
    parser.add_argument("--batch_size", type=int, default=8, help="Questions answered together.")
    add_decode_arg(parser)
    return parser.parse_args(argv)


def answer_all(model, backbone, records: list[dict], args: argparse.Namespace) -> list[str]:
    """The answer to every record, `--batch_size` questions per sampler call."""
    generator = torch.Generator(device=model_device(model)).manual_seed(args.seed)
    options = AnswerSampling(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
        do_sample=args.do_sample, decode=args.rollout_decode,
    )  # fmt: skip
    answers: list[str] = []
    with progress(len(records), "answering", "question") as bar:
        for start in range(0, len(records), args.batch_size):
            chunk = records[start : start + args.batch_size]
            images = [decode_image(r["_resolved_image"], where=f"{r['_where']}: image_path") for r in chunk]
            with torch.no_grad():
                rollout = backbone.sample_answers(
                    model, [r["question"] for r in chunk], images, options, generator=generator
                )
            warn_if_too_long(model, rollout.record["input_ids"].shape[1], args.max_new_tokens, chunk[0]["_where"])
            answers += backbone.decode_answers(rollout.completion_ids)
            bar.update(len(chunk))
    return answers


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    if args.batch_size < 1:
        raise ValueError(f"--batch_size {args.batch_size} must be >= 1.")
    check_output(args)
    records = read_questions(args.input, args.image_root or args.input.parent)
    model, backbone = load_model(args.model_path, args.device, args.dtype, args.backbone)
    answers = answer_all(model, backbone, records, args)
    lines = [
        json.dumps({k: v for k, v in record.items() if not k.startswith("_")} | {"answer": answer}, ensure_ascii=False)
        for record, answer in zip(records, answers)
    ]
    atomic_write_text(args.output, "".join(line + "\n" for line in lines))
    if is_main_process():
        print(f"Wrote {len(lines)} answers to {args.output}")


if __name__ == "__main__":
    main()
