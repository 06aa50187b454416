"""Export a training output to a folder that `janus.load_pretrained` loads (and optionally the DeepSeek layout).

    python scripts/export_checkpoint.py --checkpoint outputs/pairuni-1b --out_dir exports/pairuni-1b
    python scripts/export_checkpoint.py --checkpoint outputs/pairuni-1b/checkpoint-800 --source zero \
        --base_model deepseek-ai/Janus-Pro-1B --out_dir exports/step800 --original_dir exports/step800-original

`--checkpoint` may be a saved model folder, a `checkpoint-N/` folder, a `global_stepN/` folder or the training
output dir (its final model, else its last checkpoint; `--step N` picks checkpoint-N). `--source zero` rebuilds
the fp32 master weights from the DeepSpeed ZeRO shards instead of the saved 16-bit weights.
"""

import argparse
import logging

from open_r1.evaluation.common import DTYPES
from open_r1.evaluation.export import export_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint", required=True, help="Training output dir, checkpoint-N/, global_stepN/ or model."
    )
    parser.add_argument("--out_dir", required=True, help="Destination (transformers format, loads with janus).")
    parser.add_argument("--original_dir", default=None, help="Also write the original DeepSeek layout here.")
    parser.add_argument("--base_model", default=None, help="Config + tokenizer source when the checkpoint lacks them.")
    parser.add_argument("--step", type=int, default=None, help="Use checkpoint-STEP of a training output dir.")
    parser.add_argument("--source", default="auto", choices=["auto", "model", "zero"])
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES), help="Default: the stored dtype.")
    parser.add_argument("--no_verify", action="store_true", help="Skip reloading the export to compare weights.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = export_checkpoint(
        args.checkpoint,
        args.out_dir,
        base_model=args.base_model,
        original_dir=args.original_dir,
        step=args.step,
        prefer=args.source,
        dtype=DTYPES[args.dtype] if args.dtype else None,
        verify=not args.no_verify,
    )
    logging.getLogger(__name__).info("exported to %s", out)


if __name__ == "__main__":
    main()
