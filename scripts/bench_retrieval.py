"""Benchmark retrieval (PairUni §1 step 3): FAISS vs brute-force numpy on random 2048-d features.

    python scripts/bench_retrieval.py [--num-gen 60000 --num-und 47000 --dim 2048 --features gaussian|nonneg]

Each method runs in its own subprocess so its peak RSS (minus the features it was handed) is its own.
Methods: `faiss_topk` (exact IndexFlatIP top-k search), `numpy_topk` (chunked matmul + argpartition),
`retrieve_pairs` (the builder's full greedy one-image-once matching on FAISS) and `numpy_greedy` (the
all-pairs reference: every candidate >= threshold, one global sort; chunked, because the full
60k x 47k float32 similarity matrix alone is 11 GB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

METHODS = ("faiss_topk", "numpy_topk", "retrieve_pairs", "numpy_greedy")


def make_features(n: int, dim: int, kind: str, seed: int) -> np.ndarray:
    """Gaussian rows (cosines ~0: nothing passes 0.6) or nonnegative rows (cosines ~0.75, like ReLU features)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    if kind == "nonneg":
        x = np.abs(x)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def numpy_topk(gen: np.ndarray, und: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    sims_out, ids_out = [], []
    for start in range(0, len(gen), chunk):
        sims = gen[start : start + chunk] @ und.T  # [chunk, U]
        ids = np.argpartition(-sims, k, axis=1)[:, :k]
        top = np.take_along_axis(sims, ids, axis=1)
        order = np.argsort(-top, axis=1)
        sims_out.append(np.take_along_axis(top, order, axis=1))
        ids_out.append(np.take_along_axis(ids, order, axis=1))
    return np.concatenate(sims_out), np.concatenate(ids_out)


def run_method(args: argparse.Namespace) -> dict:
    import faiss

    from data_tools.retrieval import greedy_match_bruteforce, retrieve_pairs

    gen = make_features(args.num_gen, args.dim, args.features, 0)
    und = make_features(args.num_und, args.dim, args.features, 1)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if args.method == "faiss_topk":
        index = faiss.IndexFlatIP(args.dim)
        index.add(und)
        sims, _ = index.search(gen, args.k)
        result = {"max_sim": float(sims.max())}
    elif args.method == "numpy_topk":
        sims, _ = numpy_topk(gen, und, args.k)
        result = {"max_sim": float(sims.max())}
    elif args.method == "retrieve_pairs":
        result = {"pairs": len(retrieve_pairs(gen, und, args.threshold, 1, k=args.k))}
    else:
        result = {"pairs": len(greedy_match_bruteforce(gen, und, args.threshold, 1, chunk=2048))}
    seconds = time.perf_counter() - start
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024
    return {"method": args.method, "seconds": round(seconds, 2), "extra_peak_rss_mb": round(peak_mb), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-gen", type=int, default=60_000)
    parser.add_argument("--num-und", type=int, default=47_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--features", choices=("gaussian", "nonneg"), default="gaussian")
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)  # child-process mode
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_method(args)))
        return
    print(
        f"# {args.num_gen} gen x {args.num_und} und x {args.dim}-d {args.features} features, threshold {args.threshold}"
    )
    passthrough = [a for a in sys.argv[1:] if a not in args.methods and a != "--methods"]
    for method in args.methods:
        child = subprocess.run(
            [sys.executable, __file__, *passthrough, "--method", method], capture_output=True, text=True
        )
        print(child.stdout.strip() or f"{method} failed: {child.stderr.strip()[-400:]}", flush=True)


if __name__ == "__main__":
    main()
