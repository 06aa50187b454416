"""POPE: answer the yes/no questions, score accuracy / precision / recall / F1 / yes-ratio per split.

Usage: see `python scripts/eval_pope.py --help` and the README's "Evaluate" section; the logic lives in
open_r1/evaluation/pope.py.
"""

from open_r1.evaluation.pope import BENCHMARK

if __name__ == "__main__":
    summary = BENCHMARK.main()
    if summary:  # the main process's closing summary: results table and what was written where
        print(summary)
