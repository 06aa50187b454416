"""WISE: draw one image per prompt of the WISE prompt files as <out>/<prompt_id>.png.

Usage: see `python scripts/eval_wise.py --help` and the README's "Evaluate" section; the logic lives in
open_r1/evaluation/wise.py.
"""

from open_r1.evaluation.wise import main

if __name__ == "__main__":
    summary = main()
    if summary:  # the main process's closing summary: what was written where
        print(summary)
