"""Check a PairUG JSONL: `python -m data_tools.validate pairs.jsonl [--image-root DIR] [--no-images]`.

Reports every problem as `file:line: field: problem; fix` (schema, images exist, answer among the
question's options, similarity in [0, 1], pair_type), then a count by pair type; exits 1 on any error.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from data_tools.jsonl import iter_jsonl
from data_tools.schema import SchemaError, check_images, parse_pair


def validate_file(
    path: str | Path, image_root: str | Path | None = None, check_files: bool = True
) -> tuple[list[str], Counter]:
    """All error messages of a pair JSONL (empty when valid) and the pair counts by type."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    errors: list[str] = []
    counts: Counter = Counter()
    try:
        for where, obj in iter_jsonl(path):
            try:
                pair = parse_pair(obj, where)
                if check_files:
                    check_images(pair, where, root)
                counts[pair.pair_type] += 1
            except SchemaError as err:
                errors.append(str(err))
    except SchemaError as err:  # malformed JSON ends the scan: later line numbers would be unreliable
        errors.append(str(err))
    if not errors and not counts:
        errors.append(f"{path}: <file>: no pairs; fix: point to a non-empty PairUG JSONL")
    return errors, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", type=Path, help="pair JSONL")
    parser.add_argument("--image-root", type=Path, help="root for relative image paths (default: the JSONL's folder)")
    parser.add_argument("--no-images", action="store_true", help="skip the image-exists check")
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
