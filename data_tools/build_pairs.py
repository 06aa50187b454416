"""Build PairUG (PairUni §1) in one command: features -> K-means medoids -> completion -> retrieval -> assemble.

    python data_tools/build_pairs.py --understanding und.jsonl --generation gen.jsonl \\
        --encoder-weights resnet50.pth --work-dir work/ --output pairs.jsonl [--stage all]

Each stage caches its output in --work-dir and can run alone (`--stage features|cluster|complete|retrieve|
assemble`); a rerun skips stages whose inputs did not change, and completion calls are cached per call,
so an interrupted build resumes without repeating a finished API call. Inputs are validated up front, images
decoded (file:line: field messages; `--skip-invalid` drops bad lines and counts them), and the API key is checked
before any stage runs. A medoid the LLM keeps refusing or answering malformed is dropped and listed with its reason
in the summary. Each stage shows a progress bar (the completion bar with calls, cache hits, retries, drops, tokens
and cost at `--price`); HTTP request lines only with `--verbose`.

Choices the paper leaves open: K defaults to 5000 (the paper reports 4,971 aligned pairs from ~107k
samples, about one per cluster); every medoid is withheld from retrieval, whether or not its completion
survives verification; retrieval order is documented in `data_tools.retrieval`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from data_tools.assemble import assemble_pairs, write_outputs
from data_tools.clustering import cluster_medoids
from data_tools.completion import (
    ChatBackend,
    Completer,
    Completion,
    OpenAIBackend,
    RetriesExhausted,
    RetryPolicy,
    UsageTally,
    cost_usd,
    estimate_cost,
    model_price,
)
from data_tools.features import EncoderConfig, cache_key, cached_features, load_precomputed
from data_tools.jsonl import atomic_write_json, load_generation, load_understanding
from data_tools.retrieval import Match, retrieve_pairs
from data_tools.schema import GenerationSample, UnderstandingSample

logger = logging.getLogger("data_tools.build_pairs")
STAGES = ("features", "cluster", "complete", "retrieve", "assemble")
# Loggers that write one INFO line per API request (the openai client's HTTP layer is httpx or, in openai 3, httpx2).
HTTP_LOGGERS = ("httpx", "httpx2", "openai")


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_stage(work_dir: Path, name: str, key: str) -> dict | None:
    """A stage's cached output if it was produced from the same inputs (same key), else None."""
    path = work_dir / f"{name}.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if record.get("key") == key else None


def _require(record: dict | None, name: str) -> dict:
    if record is None:
        raise ValueError(f"stage {name!r}: no up-to-date output in --work-dir; fix: run --stage {name} (or all) first")
    return record


class Build:
    """The inputs of one build and its stages; each stage reads its predecessors' cached outputs."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.work_dir = args, Path(args.work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.und, und_report = load_understanding(args.understanding, args.und_image_root, args.skip_invalid)
        self.gen, gen_report = load_generation(args.generation, args.gen_image_root, args.skip_invalid)
        self.skipped = {"understanding": len(und_report.errors), "generation": len(gen_report.errors)}
        self.samples: list[UnderstandingSample | GenerationSample] = [*self.und, *self.gen]  # rows: U then G
        # Ids are unique within each file (the loaders name any duplicate); the prefixes keep the two files apart.
        self.ids = [f"u:{s.sample_id}" for s in self.und] + [f"g:{s.sample_id}" for s in self.gen]
        logger.info("inputs: %d understanding, %d generation samples", len(self.und), len(self.gen))

    # -- stage 1 -------------------------------------------------------------------------------------------
    def features_key(self) -> str:
        if self.args.features:
            stat = Path(self.args.features).stat()
            return _digest("precomputed", str(self.args.features), stat.st_size, stat.st_mtime_ns, self.ids)
        return cache_key([s.image_path for s in self.samples], self.encoder_config())

    def encoder_config(self) -> EncoderConfig:
        a = self.args
        return EncoderConfig(a.encoder_weights, a.random_init, a.seed, a.image_size, a.batch_size, a.num_workers)

    def features(self) -> np.ndarray:
        """All features [U+G, D] (understanding rows first)."""
        if self.args.features:
            return load_precomputed(self.args.features, self.ids)
        paths = [s.image_path for s in self.samples]
        feats, _ = cached_features(
            self.ids, paths, self.encoder_config(), self.work_dir / "features", self.args.device
        )
        return feats

    # -- stage 2 -------------------------------------------------------------------------------------------
    def cluster_key(self) -> str:
        return _digest(self.features_key(), self.args.num_clusters, self.args.seed)

    def cluster(self) -> list[int]:
        key = self.cluster_key()
        cached = _read_stage(self.work_dir, "medoids", key)
        if cached is not None:
            return cached["medoids"]
        medoids = sorted(int(i) for i in cluster_medoids(self.features(), self.args.num_clusters, self.args.seed))
        atomic_write_json(
            self.work_dir / "medoids.json", {"key": key, "medoids": medoids, "ids": [self.ids[i] for i in medoids]}
        )
        return medoids

    # -- stage 3 -------------------------------------------------------------------------------------------
    def completer(self) -> Completer:
        a = self.args
        retry = RetryPolicy(max_retries=a.max_retries, base_delay=a.retry_base_delay)
        return Completer(chat_backend(a), self.work_dir / "llm_cache", a.max_in_flight, a.max_regenerations, retry)

    def complete_key(self) -> str:
        a = self.args
        return _digest(self.cluster_key(), a.backend, a.model, a.demo_scenes, a.max_regenerations)

    def complete(self, completer: Completer | None = None) -> list[Completion | None]:
        medoid_samples = [self.samples[i] for i in _require(self._medoids(), "cluster")["medoids"]]
        if self.args.dry_run:
            estimate = estimate_cost(medoid_samples, self.args.max_regenerations)
            price = model_price(self.args.model, self.args.price)
            estimate["cost_usd_estimate_min"] = cost_usd(
                {"prompt_tokens": estimate["prompt_tokens_estimate"],
                 "completion_tokens": estimate["completion_tokens_estimate"]}, price
            )  # fmt: skip
            logger.info("dry run, no API calls: %s", json.dumps(estimate))
            return []
        completer = completer or self.completer()
        price = model_price(completer.backend.model, self.args.price)
        with completion_progress(len(medoid_samples), completer.usage, price) as progress:
            results = completer.complete_all(medoid_samples, progress)
        usage = {**completer.usage.to_dict(), "cost_usd_estimate": cost_usd(completer.usage.to_dict(), price)}
        logger.info("completion usage: %s", json.dumps(usage))
        records = [asdict(r) if r is not None else None for r in results]
        atomic_write_json(
            self.work_dir / "completions.json", {"key": self.complete_key(), "completions": records, "usage": usage}
        )
        return results

    def _medoids(self) -> dict | None:
        return _read_stage(self.work_dir, "medoids", self.cluster_key())

    # -- stage 4 -------------------------------------------------------------------------------------------
    def rest(self) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the understanding / generation samples not chosen as medoids."""
        medoids = set(_require(self._medoids(), "cluster")["medoids"])
        rows = np.array([i for i in range(len(self.samples)) if i not in medoids], dtype=np.int64)
        return rows[rows < len(self.und)], rows[rows >= len(self.und)]

    def retrieve_key(self) -> str:
        return _digest(self.cluster_key(), self.args.threshold, self.args.top_n)

    def retrieve(self) -> list[Match]:
        key = self.retrieve_key()
        cached = _read_stage(self.work_dir, "matches", key)
        if cached is not None:
            return [Match(*m) for m in cached["matches"]]
        und_rows, gen_rows = self.rest()
        feats = self.features()
        with tqdm(total=len(gen_rows), desc="retrieval", unit="sample") as bar:
            matches = retrieve_pairs(
                feats[gen_rows], feats[und_rows], self.args.threshold, self.args.top_n, progress=bar.update
            )
        atomic_write_json(
            self.work_dir / "matches.json", {"key": key, "matches": [list(asdict(m).values()) for m in matches]}
        )
        logger.info(
            "retrieval: %d pairs from %d generation x %d understanding samples",
            len(matches),
            len(gen_rows),
            len(und_rows),
        )
        return matches

    # -- stage 5 -------------------------------------------------------------------------------------------
    def assemble(self) -> dict:
        done = _require(_read_stage(self.work_dir, "completions", self.complete_key()), "complete")
        completions = [Completion(**c) if c is not None else None for c in done["completions"]]
        matches = _require(_read_stage(self.work_dir, "matches", self.retrieve_key()), "retrieve")["matches"]
        und_rows, gen_rows = self.rest()
        und_rest = [self.samples[i] for i in und_rows]
        gen_rest = [self.samples[i] for i in gen_rows]
        relative_to = Path(self.args.relative_to).resolve() if self.args.relative_to else None
        pairs = assemble_pairs(completions, [Match(*m) for m in matches], gen_rest, und_rest, relative_to)
        extra = {"skipped_invalid_inputs": self.skipped, "completion_usage": done["usage"], "build": self.build_info()}
        return write_outputs(pairs, self.output_path(), extra)

    def output_path(self) -> Path:
        return Path(self.args.output) if self.args.output else self.work_dir / "pairs.jsonl"

    def build_info(self) -> dict:
        a = self.args
        return {
            "num_clusters": a.num_clusters, "seed": a.seed, "threshold": a.threshold, "top_n": a.top_n,
            "encoder": "precomputed" if a.features else "torchvision.resnet50",
            "random_init": bool(a.random_init and not a.features),
            "backend": a.backend, "model": "demo-scenes" if a.backend == "demo" else a.model,
        }  # fmt: skip


def chat_backend(args: argparse.Namespace) -> ChatBackend:
    """The completion backend the arguments ask for (raises `ValueError` naming the missing flag)."""
    if args.backend == "demo":
        from data_tools.demo_backend import DemoCompletionBackend

        if not args.demo_scenes:
            raise ValueError("--backend demo needs --demo-scenes PATH (written by make_demo_data.py)")
        return DemoCompletionBackend(args.demo_scenes)
    return OpenAIBackend(args.model, args.base_url, args.api_key, timeout=args.timeout)


@contextmanager
def completion_progress(total: int, usage: UsageTally, price: tuple[float, float] | None) -> Iterator:
    """A tqdm bar over completed samples whose postfix shows calls, cache hits, retries, drops, tokens and cost."""
    lock = threading.Lock()  # samples finish on worker threads
    with tqdm(total=total, desc="completion", unit="sample") as bar:

        def advance(n: int) -> None:
            with lock:
                u = usage.to_dict()
                cost = cost_usd(u, price)
                bar.set_postfix_str(
                    f"calls={u['api_calls']} hits={u['cache_hits']} retries={u['retries']} dropped={u['dropped']} "
                    f"tokens={u['prompt_tokens'] + u['completion_tokens']} "
                    f"cost={'n/a' if cost is None else f'${cost:.2f}'}",
                    refresh=False,
                )
                bar.update(n)

        yield advance


def run(args: argparse.Namespace, completer: Completer | None = None) -> dict | None:
    """Run `args.stage` (or all stages in order); returns the summary when the assemble stage ran."""
    stages = STAGES if args.stage == "all" else (args.stage,)
    if "complete" in stages and completer is None and not args.dry_run and args.backend == "openai":
        # A missing or rejected key must fail in seconds, not after hours of features and clustering (issue 10).
        chat_backend(args).check_credentials()
    build = Build(args)
    summary = None
    for stage in stages:
        logger.info("stage %s", stage)
        if stage == "features":
            build.features()
        elif stage == "cluster":
            build.cluster()
        elif stage == "complete":
            build.complete(completer)
            if args.dry_run:
                return None
        elif stage == "retrieve":
            build.retrieve()
        else:
            summary = build.assemble()
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("inputs and outputs")
    io.add_argument(
        "--understanding", required=True, help="understanding JSONL (image_path, question, answer, [tag, options, id])"
    )
    io.add_argument("--generation", required=True, help="generation JSONL (image_path, prompt, [tag, id])")
    io.add_argument(
        "--und-image-root", help="root for relative understanding image paths (default: the JSONL's folder)"
    )
    io.add_argument("--gen-image-root", help="root for relative generation image paths (default: the JSONL's folder)")
    io.add_argument(
        "--work-dir", required=True, help="stage outputs and caches (features, medoids, LLM calls, matches)"
    )
    io.add_argument("--output", help="pair JSONL (default: <work-dir>/pairs.jsonl); summary + histogram beside it")
    io.add_argument("--relative-to", help="write image paths relative to this folder (default: absolute)")
    io.add_argument(
        "--stage", choices=("all", *STAGES), default="all", help="run one stage (its inputs must be cached)"
    )
    io.add_argument(
        "--skip-invalid", action="store_true", help="drop invalid input lines (counted) instead of failing"
    )
    fe = p.add_argument_group("features (ResNet-50)")
    fe.add_argument("--encoder-weights", help="local torchvision ResNet-50 state dict, e.g. resnet50-11ad3fa6.pth")
    fe.add_argument(
        "--random-init", action="store_true", help="random ResNet-50 (tests/demos only; recorded in metadata)"
    )
    fe.add_argument("--features", help="precomputed .npy [U+G, D], understanding rows first (skips the encoder)")
    fe.add_argument("--image-size", type=int, default=224)
    fe.add_argument("--batch-size", type=int, default=32)
    fe.add_argument("--num-workers", type=int, default=0)
    fe.add_argument("--device", default="cpu")
    cl = p.add_argument_group("aligned pairs (K-means medoids + completion)")
    cl.add_argument("--num-clusters", type=int, default=5000, help="K (paper: 4,971 aligned pairs from ~107k samples)")
    cl.add_argument("--seed", type=int, default=0)
    cl.add_argument("--backend", choices=("openai", "demo"), default="openai", help="demo = offline, demo scenes only")
    cl.add_argument("--demo-scenes", help="scenes.json from make_demo_data.py (for --backend demo)")
    cl.add_argument("--model", default="o3")
    cl.add_argument(
        "--base-url", default=os.environ.get("OPENAI_BASE_URL"), help="OpenAI-compatible URL (env OPENAI_BASE_URL)"
    )
    cl.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"), help="API key (env OPENAI_API_KEY)")
    cl.add_argument("--timeout", type=float, default=300.0, help="seconds per API request (reasoning models are slow)")
    cl.add_argument("--max-in-flight", type=int, default=8, help="concurrent API requests")
    cl.add_argument("--max-retries", type=int, default=6, help="retries per call on 429/5xx/timeouts/malformed JSON")
    cl.add_argument("--retry-base-delay", type=float, default=1.0, help="first backoff delay in seconds (doubles)")
    cl.add_argument("--max-regenerations", type=int, default=2, help="redraws after a rejected verification")
    cl.add_argument("--dry-run", action="store_true", help="print the number of calls and a token estimate, then stop")
    cl.add_argument(
        "--price",
        help="cost estimate: IN,OUT USD per 1M prompt/completion tokens, or a JSON file {model: [IN, OUT]} "
        "(default: data_tools.completion.PRICES_PER_MTOK, OpenAI list prices)",
    )
    p.add_argument("--verbose", action="store_true", help="also log every HTTP request (httpx / openai INFO lines)")
    rt = p.add_argument_group("retrieved pairs")
    rt.add_argument("--threshold", type=float, default=0.6, help="minimum image cosine similarity (paper: 0.6)")
    rt.add_argument("--top-n", type=int, default=1, help="understanding partners per generation sample")
    return p


def print_summary(args: argparse.Namespace, summary: dict | None) -> None:
    """The CLI's last words: what was written where (the full record is `<output stem>.summary.json`)."""
    if summary is None:
        print(f"stage {args.stage}{' (dry run)' if args.dry_run else ''} done; stage outputs in {args.work_dir}")
        return
    output = Path(args.output) if args.output else Path(args.work_dir) / "pairs.jsonl"
    types = ", ".join(f"{n} {t}" for t, n in sorted(summary["by_type"].items())) or "none"
    print(f"wrote {summary['pairs']} pairs ({types}) to {output}")
    print(f"  summary {output.with_suffix('.summary.json')}, histogram {output.with_suffix('.similarity.png')}")
    u = summary["completion_usage"]
    cost = u.get("cost_usd_estimate")
    print(
        f"  completion: {u['api_calls']} API calls, {u['cache_hits']} cache hits, {u['retries']} retries, "
        f"{u['dropped']} dropped, {u['prompt_tokens'] + u['completion_tokens']} tokens"
        + ("" if cost is None else f", about ${cost:.2f}")
    )
    for drop in u.get("dropped_samples", []):
        print(f"    dropped {drop['id']}: {drop['reason']}")
    skipped = summary["skipped_invalid_inputs"]
    if any(skipped.values()):
        print(f"  skipped invalid input lines: {skipped['understanding']} understanding, {skipped['generation']} gen")


def main(argv: list[str] | None = None) -> dict | None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One INFO line per API request drowns the progress bars of a thousands-call build (issue 16).
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if args.verbose else logging.WARNING)
    if not (args.features or args.random_init or args.encoder_weights) and args.stage in ("all", "features"):
        raise SystemExit("error: pass --encoder-weights PATH, --features FILE.npy, or --random-init")
    try:
        with logging_redirect_tqdm():  # log lines print above the bars instead of breaking them
            summary = run(args)
    except (ValueError, RetriesExhausted) as err:  # bad input, a missing stage, a server down: what to do next
        raise SystemExit(f"error: {err}") from err
    print_summary(args, summary)
    return summary


if __name__ == "__main__":
    main()
