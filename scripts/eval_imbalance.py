"""UniRL imbalance: greedy answers on the GenEval images the official scorer judged correct, share answered wrong.

    python scripts/eval_imbalance.py --model_path M --images geneval_out/ --results results.jsonl \
        --qa evaluation_metadata_qa.jsonl --out_dir eval/imbalance

The logic lives in open_r1/evaluation/imbalance.py.
"""

from open_r1.evaluation.imbalance import main

if __name__ == "__main__":
    main()
