"""DEMO ONLY: build the toy Janus-Pro (tiny, trained on the toy world of coloured shapes) in the original layout.

    python scripts/make_toy_janus.py --out_dir toy-janus            # ~2 minutes on 2 CPU cores, no downloads
    python scripts/make_toy_janus.py --out_dir toy-janus --reuse    # keep a finished build with the same settings

Seeded and deterministic on one machine. `--reuse` keeps `out_dir` when its `toy_settings.json` was written by a
build with the same settings (the demo's cache); otherwise the folder is rebuilt, but only if it is empty or an
earlier toy build. See `scripts/toy_janus.py` for what is trained and why it stops early.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

if __package__ in (None, ""):  # `python scripts/make_toy_janus.py`: make the repo (and `scripts.toy_janus`) importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.toy_janus import SETTINGS_FILE, ToySettings, build_toy_checkpoint, read_settings


def settings_parser(settings_cls: type[ToySettings], description: str) -> argparse.ArgumentParser:
    """`--out_dir`, `--reuse` and one option per field of `settings_cls` (also used by make_toy_lumina.py)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", type=Path, required=True, help="output folder (the model's original layout)")
    parser.add_argument("--reuse", action="store_true", help="keep an existing build with the same settings")
    for f in fields(settings_cls):
        parser.add_argument(f"--{f.name}", type=type(f.default), default=f.default, help=f"(default {f.default})")
    return parser


def build_or_reuse(
    args: argparse.Namespace, settings_cls: type[ToySettings], build: Callable[[Path, ToySettings], dict], name: str
) -> int:
    """Reuse `args.out_dir` when it holds a build with the same settings key, else build there (refusing a
    non-empty folder that is no toy build) and print the summary line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_cls(**{f.name: getattr(args, f.name) for f in fields(settings_cls)})
    existing = read_settings(args.out_dir)
    if args.reuse and existing is not None and existing.get("key") == settings.key():
        print(f"{name}: reusing {args.out_dir} (settings {settings.key()})")
        return 0
    if args.out_dir.exists() and any(args.out_dir.iterdir()) and existing is None:
        print(
            f"--out_dir {args.out_dir} is not empty and holds no {SETTINGS_FILE}; pick a new folder", file=sys.stderr
        )
        return 2
    summary = build(args.out_dir, settings)
    print(
        f"{name} -> {args.out_dir} in {summary['build_seconds']} s: VQ mse {summary['vq_mse']:.4f}, "
        f"{summary['codes_used']} codes used; held-out scenes, sampled (most likely): accuracy "
        f"{summary['accuracy']:.2f} ({summary['greedy_accuracy']:.2f}), toy_geneval {summary['toy_geneval']:.2f} "
        f"({summary['greedy_toy_geneval']:.2f})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = settings_parser(ToySettings, __doc__).parse_args(argv)
    return build_or_reuse(args, ToySettings, build_toy_checkpoint, "toy Janus-Pro")


if __name__ == "__main__":
    sys.exit(main())
