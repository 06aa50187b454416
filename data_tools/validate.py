"""Check a training JSONL: `python -m data_tools.validate pairs.jsonl [--image-root DIR] [--no-images]`.

Reports every problem as `file:line: field: problem; fix` (schema, images exist and decode, answer among the
question's options, similarity in [0, 1], pair_type), then a count by pair type; exits 1 on any error. Accepts
what training accepts: PairUG pairs and UniRL self rows (data_tools.unirl_rows, counted as "self").
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from data_tools.unirl_rows import SelfRow, scan_rows


def validate_file(
    path: str | Path, image_root: str | Path | None = None, check_files: bool = True
) -> tuple[list[str], Counter]:
    """All error messages of a pair JSONL (empty when valid) and the valid pairs' counts by type.

    Every line is checked (a malformed or non-UTF-8 line does not end the scan); with `check_files` every image
    is opened and decoded, so a truncated or corrupt file is reported here rather than mid-training.
    """
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    rows, messages = scan_rows(path, root, check_files)
    counts = Counter("self" if isinstance(row, SelfRow) else row.pair_type for _, row in rows)
    if not messages and not counts:
        messages.append(f"{path}: <file>: no pairs; fix: point to a non-empty PairUG JSONL")
    return messages, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", type=Path, help="pair JSONL")
    parser.add_argument("--image-root", type=Path, help="root for relative image paths (default: the JSONL's folder)")
    parser.add_argument("--no-images", action="store_true", help="skip the image checks (exist, decode)")
    args = parser.parse_args(argv)
    if not args.pairs.is_file():
        print(f"{args.pairs}: file not found", file=sys.stderr)
        return 1
    errors, counts = validate_file(args.pairs, args.image_root, not args.no_images)
    for message in errors:
        print(message)
    total = sum(counts.values())
    print(f"{args.pairs}: {total} valid pair(s) {dict(counts)}, {len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
