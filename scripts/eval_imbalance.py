"""UniRL imbalance: greedy answers on the GenEval images the official scorer judged correct, share answered wrong.

    python scripts/eval_imbalance.py --model_path M --images geneval_out/ --results results.jsonl \
        --qa evaluation_metadata_qa.jsonl --out_dir eval/imbalance

The logic lives in open_r1/evaluation/imbalance.py.
"""

from open_r1.evaluation.common import is_main_process
from open_r1.evaluation.imbalance import build_parser, main, summary

if __name__ == "__main__":
    out_dir = build_parser().parse_args().out_dir
    result = main()
    if is_main_process():
        print(summary(result, out_dir))
