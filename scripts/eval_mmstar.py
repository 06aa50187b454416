"""MMStar: answer, score (overall and per category) and write predictions.jsonl + results.json.

Usage: see `python scripts/eval_mmstar.py --help` and the README's "Evaluate" section; the logic lives in
open_r1/evaluation/mmstar.py.
"""

from open_r1.evaluation.mmstar import BENCHMARK

if __name__ == "__main__":
    summary = BENCHMARK.main()
    if summary:  # the main process's closing summary: results table and what was written where
        print(summary)
