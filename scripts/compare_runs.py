"""Markdown table of evaluation runs side by side (e.g. base vs trained) with the paper's reference numbers.

    python scripts/compare_runs.py --run base=eval/janus-pro-1b --run trained=eval/pairuni-1b \
        --value base:wise=0.26 --value trained:wise=0.38 --reference Janus-Pro-1B PairUni-1B

Each `--run NAME=PATH` is a folder holding the eval scripts' results.json files (or one results.json).
"""

import argparse
from pathlib import Path

from open_r1.evaluation.compare import PAPER, collect_results, comparison_table, parse_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, help="NAME=PATH (repeat; order = columns)")
    parser.add_argument("--value", action="append", default=[], help="RUN:BENCHMARK=VALUE for external scorers")
    parser.add_argument("--reference", nargs="*", default=["Janus-Pro-1B", "PairUni-1B"], choices=sorted(PAPER))
    parser.add_argument("--output", default=None, help="Also write the table to this markdown file.")
    args = parser.parse_args()
    runs: dict[str, dict[str, float]] = {}
    for spec in args.run:
        name, sep, path = spec.partition("=")
        if not sep:
            parser.error(f"--run {spec!r}: expected NAME=PATH")
        runs[name] = collect_results(path)
    for spec in args.value:
        run, benchmark, value = parse_value(spec)
        if run not in runs:
            parser.error(f"--value {spec!r}: run {run!r} is not one of {list(runs)}")
        runs[run][benchmark] = value
    table = comparison_table(runs, args.reference)
    print(table)
    if args.output:
        Path(args.output).write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
