"""Write a tiny random Lumina-DiMOO checkpoint in the ORIGINAL layout (LLaDA config + weights, tokenizer, vqvae/).

Usage: python scripts/make_tiny_dimoo.py --out_dir checkpoints/tiny-dimoo [--seed 0]
"""

import argparse
import logging

from lumina_dimoo.tiny import build_tiny_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", required=True, help="Folder to write (created if missing).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random weights (same seed, same files).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    path = build_tiny_checkpoint(args.out_dir, seed=args.seed)
    logging.getLogger(__name__).info("Tiny Lumina-DiMOO checkpoint ready: %s", path)


if __name__ == "__main__":
    main()
