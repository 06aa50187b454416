"""DEMO ONLY: build the toy Lumina-DiMOO (tiny, trained on the toy world of coloured shapes) in the original layout.

    python scripts/make_toy_lumina.py --out_dir toy-lumina            # no downloads; slower than the toy Janus-Pro
    python scripts/make_toy_lumina.py --out_dir toy-lumina --reuse    # keep a finished build with the same settings

Same options and cache rule as `scripts/make_toy_janus.py`; what is trained: `scripts/toy_lumina.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python scripts/make_toy_lumina.py`: make the repo (and `scripts.*`) importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.make_toy_janus import build_or_reuse, settings_parser
from scripts.toy_lumina import ToyLuminaSettings, build_toy_lumina


def main(argv: list[str] | None = None) -> int:
    args = settings_parser(ToyLuminaSettings, __doc__).parse_args(argv)
    return build_or_reuse(args, ToyLuminaSettings, build_toy_lumina, "toy Lumina-DiMOO")


if __name__ == "__main__":
    sys.exit(main())
