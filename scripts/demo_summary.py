"""Print how each task's mean reward moved over a PairGRPO run (the demo's last stage).

    python scripts/demo_summary.py demo_output/run/metrics.jsonl

For `understand` and `generate`: the first and last logged reward, and the means of the first and last third of
the logged steps (the demo's success criterion: the last third beats the first by at least 0.1 for both tasks).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TASKS = ("understand", "generate")
MIN_RISE = 0.1


def reward_curves(metrics_path: Path) -> dict[str, list[float]]:
    """Per task, the logged `<task>/reward_mean` values in step order."""
    records = [json.loads(line) for line in metrics_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {t: [r[f"{t}/reward_mean"] for r in records if r.get(f"{t}/reward_mean") is not None] for t in TASKS}


def thirds(curve: list[float]) -> tuple[float, float]:
    """Means of the first and the last third of `curve` (at least one value each)."""
    n = max(1, len(curve) // 3)
    return sum(curve[:n]) / n, sum(curve[-n:]) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path, help="metrics.jsonl of a run")
    args = parser.parse_args(argv)
    if not args.metrics.is_file():
        print(f"{args.metrics}: not found; did the run finish?", file=sys.stderr)
        return 1
    risen = True
    for task, curve in reward_curves(args.metrics).items():
        if not curve:
            print(f"  {task:10s}: no reward logged", file=sys.stderr)
            return 1
        first, last = thirds(curve)
        risen &= last - first >= MIN_RISE
        print(
            f"  {task:10s}: first step {curve[0]:.2f}, last step {curve[-1]:.2f}; "
            f"mean of first third {first:.2f} -> last third {last:.2f} ({last - first:+.2f}, {len(curve)} steps)"
        )
    print("  both tasks improved" if risen else f"  warning: a task rose by less than {MIN_RISE} (noisy run?)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
