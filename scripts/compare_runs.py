"""Markdown table of evaluation runs side by side (e.g. base vs trained) with the paper's reference numbers.

    python scripts/compare_runs.py --run base=eval/janus-pro-1b --run trained=eval/pairuni-1b \
        --value base:wise=0.26 --value trained:wise=0.38 --reference Janus-Pro-1B PairUni-1B

Each `--run NAME=PATH` is a folder holding the eval scripts' results.json files (or one results.json). Smoke runs
(--limit, or no samples) are marked `*`.
"""

import argparse
from pathlib import Path

from data_tools.jsonl import atomic_write_text
from open_r1.evaluation.compare import PAPER, comparison_table, parse_value, read_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, help="NAME=PATH (repeat; order = columns)")
    parser.add_argument("--value", action="append", default=[], help="RUN:BENCHMARK=VALUE for external scorers")
    parser.add_argument("--reference", nargs="*", default=["Janus-Pro-1B", "PairUni-1B"], choices=sorted(PAPER))
    parser.add_argument("--output", default=None, help="Also write the table to this markdown file (a new one).")
    parser.add_argument("--overwrite", action="store_true", help="Let --output replace an existing file.")
    args = parser.parse_args(argv)
    if args.output and Path(args.output).exists() and not args.overwrite:
        parser.error(f"--output {args.output} exists; fix: choose a new file, or pass --overwrite to replace it")
    runs: dict[str, dict[str, float]] = {}
    smoke: dict[str, set[str]] = {}
    for spec in args.run:
        name, sep, path = spec.partition("=")
        if not sep:
            parser.error(f"--run {spec!r}: expected NAME=PATH")
        if name in runs:
            parser.error(f"--run {spec!r}: the name {name!r} is given twice; fix: give each run its own NAME")
        runs[name], smoke[name] = read_run(path)
    for spec in args.value:
        try:
            run, benchmark, value = parse_value(spec)
        except ValueError as err:
            parser.error(f"--value: {err}")
        if run not in runs:
            parser.error(f"--value {spec!r}: run {run!r} is not one of {list(runs)}")
        runs[run][benchmark] = value
    table = comparison_table(runs, args.reference, smoke)
    print(table)
    if args.output:
        atomic_write_text(args.output, table + "\n")
        print(f"Wrote the table to {args.output}")


if __name__ == "__main__":
    main()
