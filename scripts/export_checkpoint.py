"""Export a training output to a folder that `janus.load_pretrained` and transformers load (and optionally the
original DeepSeek layout for the official Janus code).

    python scripts/export_checkpoint.py --checkpoint outputs/pairuni-1b --out_dir exports/pairuni-1b
    python scripts/export_checkpoint.py --checkpoint outputs/pairuni-1b/checkpoint-800 --source zero \\
        --base_model checkpoints/Janus-Pro-1B --out_dir exports/step800 --original_dir exports/step800-original

`--checkpoint` may be a saved model folder, a `checkpoint-N/` folder, a `global_stepN/` folder or the training
output dir (its final model, else its last checkpoint; `--step N` picks checkpoint-N). `--source zero` rebuilds
the fp32 master weights from the DeepSpeed ZeRO shards instead of the saved 16-bit weights. `--base_model` is a
local Janus-Pro folder (config + tokenizer), e.g. a downloaded deepseek-ai/Janus-Pro-1B.

Targets must be new or empty folders (`--overwrite` replaces the weights, configs and tokenizer of an existing
export and removes its old weight/index files); each is written to a temporary folder, verified, then moved into
place, so a failed export leaves the targets untouched.
"""

import argparse
import logging
import sys

from janus.checkpoint import DTYPE_NAMES
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
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPE_NAMES), help="Default: the stored dtype.")
    parser.add_argument("--no_verify", action="store_true", help="Skip reloading the export to compare weights.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing export in the target folders.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = export_checkpoint(
            args.checkpoint,
            args.out_dir,
            base_model=args.base_model,
            original_dir=args.original_dir,
            step=args.step,
            prefer=args.source,
            dtype=args.dtype,
            verify=not args.no_verify,
            overwrite=args.overwrite,
        )
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"export_checkpoint.py: error: {error}")
    print(result.summary(), file=sys.stderr)  # stdout stays free for callers that parse it


if __name__ == "__main__":
    main()
