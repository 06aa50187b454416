"""MME: answer the yes/no questions, score acc / acc+ per subtask and the perception / cognition totals.

Usage: see `python scripts/eval_mme.py --help` and the README's "Evaluate" section; the logic lives in
open_r1/evaluation/mme.py.
"""

from open_r1.evaluation.mme import BENCHMARK

if __name__ == "__main__":
    summary = BENCHMARK.main()
    if summary:  # the main process's closing summary: results table and what was written where
        print(summary)
