"""DEMO ONLY: UniRL self rows for the toy world of coloured shapes (`make demo-unirl`); no image is written.

    python scripts/make_toy_unirl_rows.py --out rows.jsonl --num 256 --seed 0

Each row is a toy scene's generation prompt ("a photo of two red circles") with a 4-option question that the prompt
alone decides: its count, colour or shape (the toy world's question generator, `data_tools.demo_scenes`; questions
about position are skipped, as a prompt does not say where a shape is). Under UniRL the model draws the image.
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
from data_tools.schema import format_mcq
from data_tools.unirl_rows import SelfRow

# The question stems of data_tools.demo_scenes.multiple_choice, by the property they ask about.
TAGS = {"How many": "counting", "What colour": "colors", "What shape": "shape", "Where is": "position"}


def toy_rows(num: int, seed: int) -> list[SelfRow]:
    """`num` rows drawn with `random.Random(seed)`; each asks about a property its prompt names."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < num:
        scene = random_scene(rng)
        stem, options, answer = multiple_choice(scene, rng)
        tag = next(tag for start, tag in TAGS.items() if stem.startswith(start))
        if tag != "position":
            rows.append(SelfRow(generation_prompt(scene), format_mcq(stem, options), answer, tag))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    parser.add_argument("--num", type=int, default=256, help="rows to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = toy_rows(args.num, args.seed)
    write_jsonl(args.out, [row.to_dict() for row in rows])
    print(f"wrote {len(rows)} toy UniRL rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
