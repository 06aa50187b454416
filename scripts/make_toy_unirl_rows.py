"""DEMO ONLY: UniRL self rows for the toy world of coloured shapes (`make demo-unirl`); no image is written.

    python scripts/make_toy_unirl_rows.py --out rows.jsonl --num 256 --seed 0
    python scripts/make_toy_unirl_rows.py --out rows.jsonl --kinds counting,colors,shape   # shape questions too

Each row is a toy scene's generation prompt ("a photo of two red circles") with a 4-option question that the prompt
alone decides: its count, colour or shape (the toy world's question generator, `data_tools.demo_scenes`; questions
about position are never asked, as a prompt does not say where a shape is). Under UniRL the model draws the image.
By default only count and colour questions are kept: the toy VQ draws shapes rounded (16 tokens for 32 px), so the
shape of the model's own drawing can hardly be read back, and with shape questions the demo's rewards rose by only
+0.08 / +0.08 over 150 steps (against +0.12 / +0.10 and +0.22 / +0.22 without, seeds 0 and 1, one process).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python scripts/make_toy_unirl_rows.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_tools.demo_scenes import generation_prompt, multiple_choice, random_scene
from data_tools.jsonl import write_jsonl
from data_tools.multiple_choice import format_mcq
from data_tools.unirl_rows import SelfRow

# The question stems of data_tools.demo_scenes.multiple_choice, by the property they ask about.
TAGS = {"How many": "counting", "What colour": "colors", "What shape": "shape", "Where is": "position"}


DEFAULT_KINDS = ("counting", "colors")
ASKABLE = ("counting", "colors", "shape")  # what a prompt decides


def toy_rows(num: int, seed: int, kinds: tuple[str, ...] = DEFAULT_KINDS) -> list[SelfRow]:
    """`num` rows drawn with `random.Random(seed)`; each asks about a property of `kinds` that its prompt names."""
    unknown = sorted(set(kinds) - set(ASKABLE))
    if unknown or not kinds:
        raise ValueError(f"kinds={list(kinds)}: use a non-empty subset of {list(ASKABLE)} (unknown: {unknown})")
    rng = random.Random(seed)
    rows = []
    while len(rows) < num:
        scene = random_scene(rng)
        stem, options, answer = multiple_choice(scene, rng)
        tag = next(tag for start, tag in TAGS.items() if stem.startswith(start))
        if tag in kinds:
            rows.append(SelfRow(generation_prompt(scene), format_mcq(stem, options), answer, tag))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    parser.add_argument("--num", type=int, default=256, help="rows to write (>= 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kinds",
        default=",".join(DEFAULT_KINDS),
        help=f"comma-separated question kinds from {list(ASKABLE)} (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f"--num {args.num}: nothing to write; fix: pass --num 1 or more")
    if args.out.exists() and not args.overwrite:
        parser.error(f"--out {args.out} exists; fix: choose a new file, or pass --overwrite to replace it")
    try:
        rows = toy_rows(args.num, args.seed, tuple(k.strip() for k in args.kinds.split(",") if k.strip()))
    except ValueError as error:
        parser.error(f"--kinds: {error}")
    write_jsonl(args.out, [row.to_dict() for row in rows])
    print(f"wrote {len(rows)} toy UniRL rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
