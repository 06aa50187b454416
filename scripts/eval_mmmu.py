"""MMMU validation: answer, score (multiple choice + open) and write predictions.jsonl + results.json.

Usage: see `python scripts/eval_mmmu.py --help` and the README's "Evaluate" section; the logic lives in
open_r1/evaluation/mmmu.py.
"""

from open_r1.evaluation.mmmu import BENCHMARK

if __name__ == "__main__":
    summary = BENCHMARK.main()
    if summary:  # the main process's closing summary: results table and what was written where
        print(summary)
