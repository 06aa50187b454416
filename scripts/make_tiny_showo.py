"""Write a tiny random Show-o checkpoint in the ORIGINAL layout (for tests and the CPU recipe).

Usage: python scripts/make_tiny_showo.py --out_dir checkpoints/tiny-showo [--seed 0]
"""

import argparse
import logging

from showo.tiny import build_tiny_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", required=True, help="Folder to write (created if missing).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random weights (same seed, same files).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger(__name__).info(
        "Tiny Show-o checkpoint ready: %s", build_tiny_checkpoint(args.out_dir, args.seed)
    )


if __name__ == "__main__":
    main()
