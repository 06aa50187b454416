"""Random pairs for the pairing ablation (PairUni §4, "random pairs" row), from the same pools as a PairUG file.

    python -m data_tools.random_pairs --pairs pairs.jsonl --output random_pairs.jsonl \\
        --encoder-weights resnet50.pth --seed 0

The generation sides (image, prompt) and the understanding sides (image, question, answer) of the given pairs are
re-paired by a seeded random permutation that leaves no pair with its original partner: same count, same samples,
same schema, `pair_type: "random"`. Each pair's `similarity` is the image cosine of the same ResNet-50 features
the builder uses (`data_tools.features`, cached in --work-dir), so similarity weighting applies to it as to
retrieved pairs. Image paths are written absolute; a summary and a similarity histogram go beside the output.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from data_tools.assemble import write_outputs
from data_tools.features import EncoderConfig, cached_features
from data_tools.jsonl import scan_pairs
from data_tools.schema import Annotation, Pair, resolve_image

logger = logging.getLogger(__name__)


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded random permutation of range(n) with no fixed point (n >= 2): fixed points of a random
    permutation are rotated among themselves, or swapped with a random other position when there is one."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    fixed = np.flatnonzero(perm == np.arange(n))
    if len(fixed) > 1:
        perm[fixed] = perm[np.roll(fixed, 1)]
    elif len(fixed) == 1:
        i = int(fixed[0])
        j = int(rng.choice(np.delete(np.arange(n), i)))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def random_pairs(pairs: list[Pair], image_root: Path, similarity_of, seed: int) -> list[Pair]:
    """Re-pair the generation sides of `pairs` with a deranged permutation of their understanding sides.

    `similarity_of(gen_path, und_path)` gives the image cosine of two absolute image paths.
    """
    if len(pairs) < 2:
        raise ValueError(f"{len(pairs)} pair(s): random pairing needs at least 2; fix: pass a larger pair file")

    def absolute(ann: Annotation, **texts: str) -> Annotation:
        return Annotation(str(resolve_image(ann.image_path, image_root).resolve()), tag=ann.tag, **texts)

    gens = [absolute(p.generate_ann, prompt=p.generate_ann.prompt) for p in pairs]
    unds = [absolute(p.understand_ann, question=p.understand_ann.question, answer=p.understand_ann.answer)
            for p in pairs]  # fmt: skip
    out = []
    for gen, j in zip(gens, derangement(len(pairs), seed), strict=True):
        und = unds[int(j)]
        similarity = round(min(max(similarity_of(gen.image_path, und.image_path), 0.0), 1.0), 6)
        out.append(Pair(similarity, gen, und, "random"))
    return out


def feature_similarity(paths: list[str], config: EncoderConfig, cache_dir: Path, device: str = "cpu"):
    """`similarity_of(a, b)` over ResNet-50 features of `paths` (computed once, cached like the builder's)."""
    unique = sorted(set(paths))
    feats, _ = cached_features(unique, unique, config, cache_dir, device)  # [P, 2048], L2-normalised
    row = {p: i for i, p in enumerate(unique)}
    return lambda a, b: float(feats[row[a]] @ feats[row[b]])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=Path, required=True, help="PairUG JSONL whose samples form the pools")
    p.add_argument("--image-root", type=Path, help="root for its relative image paths (default: the file's folder)")
    p.add_argument("--output", type=Path, required=True, help="random-pair JSONL (summary + histogram beside it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, help="feature cache (default: <output folder>/random_pairs_work)")
    p.add_argument("--encoder-weights", help="local torchvision ResNet-50 state dict (as for build_pairs.py)")
    p.add_argument("--random-init", action="store_true", help="random ResNet-50 (tests/demos only)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output (never the --pairs file)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = _run(args)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err
    print(f"wrote {summary['pairs']} random pairs (seed {args.seed}) to {args.output}")
    print(
        f"  summary {args.output.with_suffix('.summary.json')}, histogram {args.output.with_suffix('.similarity.png')}"
    )
    return summary


def _check_output(args: argparse.Namespace) -> None:
    """Before any work: the output must not be the input, nor an existing file unless --overwrite (issue 25)."""
    if args.output.resolve() == args.pairs.resolve():
        raise ValueError(f"--output {args.output} is the --pairs file; write the random pairs to another path.")
    if args.output.exists() and not args.overwrite:
        raise ValueError(f"--output {args.output} already exists; pass --overwrite to replace it, or another path.")


def _run(args: argparse.Namespace) -> dict:
    _check_output(args)
    root = args.image_root or args.pairs.parent
    scanned, errors = scan_pairs(args.pairs, root)
    if errors:
        raise ValueError(f"{len(errors)} invalid line(s) in {args.pairs}:\n" + "\n".join(errors))
    pairs = [pair for _, pair in scanned]
    paths = [
        str(resolve_image(a.image_path, root).resolve()) for p in pairs for a in (p.generate_ann, p.understand_ann)
    ]
    config = EncoderConfig(args.encoder_weights, args.random_init, args.seed, args.image_size, args.batch_size)
    cache = (args.work_dir or args.output.parent / "random_pairs_work") / "features"
    shuffled = random_pairs(pairs, root, feature_similarity(paths, config, cache, args.device), args.seed)
    extra = {"random_pairs": {"source": str(args.pairs.resolve()), "seed": args.seed, "random_init": args.random_init}}
    return write_outputs(shuffled, args.output, extra)


if __name__ == "__main__":
    main()
