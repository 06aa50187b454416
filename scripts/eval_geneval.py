"""GenEval: draw images for evaluation_metadata.jsonl (`generate`) or summarise the official scorer's results.jsonl (`summarize`).

Usage: see `python scripts/eval_geneval.py --help` and the README's "Evaluate" section; the logic lives in
open_r1/evaluation/geneval.py.
"""

from open_r1.evaluation.geneval import main

if __name__ == "__main__":
    summary = main()
    if summary:  # the main process's closing summary: what was written where
        print(summary)
