"""Side-by-side table of runs (e.g. base vs trained) over the paper's six benchmarks, with the paper's numbers.

A run is a folder searched for `results.json` files (one per benchmark, as the drivers write them) or a single
results.json; scores from external scorers without a results.json (WISE's GPT-4o WiScore) are given as
`RUN:BENCHMARK=VALUE`. Smoke runs (`--limit`, or no samples) are marked `*` and footnoted: they are not comparable
with full runs or the paper. Reference numbers: PairUni (arXiv 2510.25682) main table.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from open_r1.evaluation.common import format_value, markdown_table, read_results_json

logger = logging.getLogger(__name__)

# (key, column title, unit) in the paper's column order.
BENCHMARKS = (
    ("mmmu", "MMMU", "acc %"),
    ("mmstar", "MMStar", "acc %"),
    ("mme", "MME-P", "score"),
    ("pope", "POPE", "F1 %"),
    ("geneval", "GenEval", "overall"),
    ("wise", "WISE", "WiScore"),
)
PAPER: dict[str, dict[str, float | None]] = {
    "Janus-Pro-1B": {"mmmu": 36.3, "mmstar": None, "mme": 1444.0, "pope": 86.2, "geneval": 0.73, "wise": None},
    "PairUni-1B": {"mmmu": 40.4, "mmstar": 46.4, "mme": 1483.2, "pope": 86.4, "geneval": 0.79, "wise": 0.38},
    "Janus-Pro-7B": {"mmmu": 41.1, "mmstar": 46.5, "mme": 1567.1, "pope": 87.4, "geneval": 0.79, "wise": 0.35},
    "PairUni-7B": {"mmmu": 47.0, "mmstar": 49.5, "mme": 1597.7, "pope": 88.0, "geneval": 0.85, "wise": 0.45},
}


SMOKE_MARK = "*"
SMOKE_NOTE = f"{SMOKE_MARK} smoke run (--limit or no samples): not comparable with full runs or the paper."


def is_smoke(result: dict) -> bool:
    """A results.json from a --limit run or with no samples."""
    return result.get("num_samples", 1) == 0 or (result.get("settings") or {}).get("limit") is not None


def collect_results(path: str | Path) -> dict[str, float]:
    """`{benchmark: headline}` from a results.json file or every results.json under a folder."""
    return read_run(path)[0]


def read_run(path: str | Path) -> tuple[dict[str, float], set[str]]:
    """(`{benchmark: headline}`, the benchmarks whose result is a smoke run) of a results.json or a folder of them."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob("results.json"))
    if not files:
        raise ValueError(f"{path}: no results.json found; run the eval_* scripts with --out_dir under this folder.")
    scores: dict[str, float] = {}
    smoke: set[str] = set()
    for file in files:
        result = read_results_json(file)
        if "benchmark" not in result or "headline" not in result:
            raise ValueError(f"{file}: not a results.json written by open_r1.evaluation (needs benchmark, headline).")
        if result["benchmark"] in scores:
            raise ValueError(f"{file}: a second {result['benchmark']} result in {path}; keep one per run folder.")
        scores[result["benchmark"]] = _headline(result["headline"], file)
        if is_smoke(result):
            smoke.add(result["benchmark"])
    return scores, smoke


def _headline(value: object, file: Path) -> float:
    """A finite number: a NaN or missing score would print as a result in the table."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not math.isfinite(number):
        raise ValueError(
            f"{file}: headline: {value!r} is not a finite number; fix: rerun the benchmark (a NaN headline means no "
            "sample was scored)"
        )
    return float(number)


def parse_value(text: str) -> tuple[str, str, float]:
    """ "trained:wise=0.41" -> ("trained", "wise", 0.41)."""
    try:
        target, value = text.split("=", 1)
        run, benchmark = target.split(":", 1)
        number = float(value)
    except ValueError:
        raise ValueError(f"value {text!r}: expected RUN:BENCHMARK=NUMBER, e.g. trained:wise=0.41.") from None
    keys = [key for key, _, _ in BENCHMARKS]
    if benchmark.lower() not in keys:
        raise ValueError(f"value {text!r}: benchmark {benchmark!r} is not one of {keys}.")
    if not math.isfinite(number):
        raise ValueError(f"value {text!r}: {value!r} is not a finite number.")
    return run, benchmark.lower(), number


def comparison_table(
    runs: Mapping[str, Mapping[str, float]],
    references: Sequence[str] = (),
    smoke: Mapping[str, set[str]] | None = None,
) -> str:
    """Markdown table: one row per benchmark, one column per run, the change of the last run over the first, and
    the paper's numbers for `references` (keys of PAPER). `smoke[run]` names the run's smoke results, marked `*`
    with a footnote."""
    smoke = smoke or {}
    for name in references:
        if name not in PAPER:
            raise ValueError(f"reference {name!r} unknown; choose from {sorted(PAPER)}.")
    names = list(runs)
    headers = ["benchmark", "metric", *names]
    if len(names) > 1:
        headers.append(f"{names[-1]} - {names[0]}")
    headers += [f"paper {name}" for name in references]
    rows = []
    for key, title, unit in BENCHMARKS:
        values = [runs[name].get(key) for name in names]
        row = [title, unit, *(_cell(value, key in smoke.get(name, ())) for name, value in zip(names, values))]
        if len(names) > 1:
            first, last = values[0], values[-1]
            row.append(None if first is None or last is None else f"{last - first:+.{2 if abs(last) >= 1 else 3}f}")
        row += [PAPER[name][key] for name in references]
        rows.append(row)
    table = markdown_table(headers, rows)
    return table + "\n\n" + SMOKE_NOTE if any(smoke.values()) else table


def _cell(value: float | None, smoke: bool) -> float | str | None:
    return f"{format_value(value)}{SMOKE_MARK}" if smoke and value is not None else value
