"""Export PairUG for BAGEL's own trainer (PairUni App. E): generation half, understanding half, and whole pairs.

    python data_tools/export_bagel.py --pairs PAIRS.jsonl --out DIR [--image-root R] [--num-shards S]

DIR gets `images/` (each distinct image once), `t2i/*.parquet` (BAGEL group `t2i_pretrain`), `vlm/<name>.jsonl`
(group `vlm_sft`), `paired/<name>.jsonl` (group `pairug_paired`, read by `scripts/bagel_paired.py`),
`dataset_info.json`, `bagel_paired.yaml`, `bagel_mix.yaml` and `export_report.json`. Nothing here imports BAGEL;
docs/bagel.md shows how its trainer reads the folder. The folder is built beside DIR and renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from tqdm import tqdm

from data_tools.jsonl import atomic_write_bytes, atomic_write_json, atomic_write_text, scan_pairs, write_jsonl
from data_tools.schema import Pair, resolve_image

logger = logging.getLogger("data_tools.export_bagel")

# One 8-GPU node with 2 DataLoader workers per rank: BAGEL shards parquet FILES and JSONL LINES over ranks x workers,
# and a worker left without any loops forever (BAGEL TRAIN.md: sum(num_used_data) > NUM_GPUS x NUM_WORKERS).
DEFAULT_RANKS, DEFAULT_WORKERS = 8, 2
# BAGEL's T2I reader loads one row group into pandas at a time: small groups bound each worker's memory.
ROWS_PER_ROW_GROUP = 64
IMAGE_MARKER = "<image>"  # where BAGEL's `vlm_sft` reader inserts the image; the human turn starts with it
# Generation at 512 px (paper App. E): long side 512, short side 512 when possible, sides a multiple of 16.
VAE_TRANSFORM = {"image_stride": 16, "max_image_size": 512, "min_image_size": 512}
# Understanding images as BAGEL's own `vlm_sft` example config (data/configs/example.yaml) resizes them.
VIT_TRANSFORM = {"image_stride": 14, "max_image_size": 980, "min_image_size": 378, "max_pixels": 2_007_040}
# Required by BAGEL's `vlm_sft` class even for image-only data (its constructor takes a frame sampler).
FRAME_SAMPLER = {"max_num_frames": 12, "min_num_frames": 8}
T2I_SCHEMA = pa.schema(
    [("image", pa.binary()), ("captions", pa.string()), ("pair_id", pa.int64()), ("tag", pa.string())]
)


@dataclass(frozen=True)
class ExportedPair:
    """One pair as exported: images named by content inside `images/`, texts ready for BAGEL's readers."""

    pair_id: int
    source: str  # "file:line" of the pair in the PairUG JSONL
    pair_type: str
    similarity: float
    gen_image: str
    caption: str
    gen_tag: str
    und_image: str
    question: str
    answer: str
    und_tag: str


@dataclass(frozen=True)
class Layout:
    """How BAGEL splits `units` (parquet files or JSONL lines) over ranks x workers: `per_rank // workers` each,
    remainders never read (`DistributedIterableDataset.set_epoch` / `get_data_paths_per_worker`)."""

    ranks: int
    workers: int

    def per_worker(self, units: int) -> int:
        return (units // self.ranks) // self.workers

    def unused(self, units: int) -> int:
        return units - self.per_worker(units) * self.ranks * self.workers


def human_turn(question: str) -> str:
    """The understanding question as BAGEL's human turn: the image first, then the question (as `Bagel.chat`)."""
    return f"{IMAGE_MARKER}\n{question}"


def clean_question(question: str, where: str) -> tuple[str, bool]:
    """The question without stray `<image>` markers (BAGEL would split the question at each one); True if any."""
    if IMAGE_MARKER not in question:
        return question, False
    logger.warning(
        "%s: understand_ann.question: removed %r markers (the exporter places the image)", where, IMAGE_MARKER
    )
    return question.replace(IMAGE_MARKER, "").strip(), True


class ImageStore:
    """Copies each distinct image (by content) once into `folder` as `<sha1[:20]><suffix>`; the same source path,
    or the same bytes under another path (an aligned pair's shared image), maps to one file."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._by_path: dict[str, str] = {}

    def add(self, path: Path) -> str:
        key = str(path.resolve())
        if key not in self._by_path:
            data = path.read_bytes()
            name = hashlib.sha1(data).hexdigest()[:20] + (path.suffix.lower() or ".img")
            dest = self.folder / name
            if not dest.exists():  # a rerun after an interruption keeps the files already copied
                atomic_write_bytes(dest, data)
            self._by_path[key] = name
        return self._by_path[key]

    def count(self) -> int:
        return len(set(self._by_path.values()))


def load_pairs(path: Path, image_root: Path, skip_invalid: bool) -> tuple[list[tuple[str, Pair]], list[str]]:
    """Valid pairs (schema checked, both images exist and decode) and the error of every other line."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found; fix: point --pairs at a PairUG JSONL (data_tools/build_pairs.py)")
    pairs, errors = scan_pairs(path, image_root)
    if errors and not skip_invalid:
        raise ValueError(
            f"{len(errors)} invalid line(s) in {path} (fix them, or pass --skip-invalid to drop them):\n"
            + "\n".join(errors)
        )
    for message in errors:
        logger.warning("skipped %s", message)
    if not pairs:
        raise ValueError(f"{path}: no valid pairs; fix: point --pairs at a non-empty PairUG JSONL")
    return pairs, errors


def export_pairs(pairs: list[tuple[str, Pair]], image_root: Path, store: ImageStore) -> tuple[list[ExportedPair], int]:
    """Copy the images of every pair into `store`; the exported pairs and how many questions lost `<image>` markers."""
    exported, cleaned = [], 0
    for pair_id, (where, pair) in enumerate(tqdm(pairs, desc="images", unit="pair")):
        gen, und = pair.generate_ann, pair.understand_ann
        question, had_marker = clean_question(und.question, where)
        cleaned += had_marker
        exported.append(
            ExportedPair(
                pair_id, where, pair.pair_type, pair.similarity,
                store.add(resolve_image(gen.image_path, image_root)), gen.prompt, gen.tag,
                store.add(resolve_image(und.image_path, image_root)), question, und.answer, und.tag,
            )
        )  # fmt: skip
    return exported, cleaned


def conversations(pair: ExportedPair) -> list[dict[str, str]]:
    return [{"from": "human", "value": human_turn(pair.question)}, {"from": "gpt", "value": pair.answer}]


def vlm_record(pair: ExportedPair) -> dict[str, Any]:
    """A LLaVA-style line for BAGEL's `vlm_sft` (`image` relative to the images folder)."""
    return {"id": pair.pair_id, "image": pair.und_image, "conversations": conversations(pair)}


def paired_record(pair: ExportedPair) -> dict[str, Any]:
    """One line per pair for the `pairug_paired` group: both halves, each in its stock reader's terms."""
    return {
        "id": pair.pair_id,
        "similarity": pair.similarity,
        "pair_type": pair.pair_type,
        "source": pair.source,
        "gen": {"image": pair.gen_image, "caption": pair.caption, "tag": pair.gen_tag},
        "und": {"image": pair.und_image, "conversations": conversations(pair), "tag": pair.und_tag},
    }


def captions_json(caption: str) -> str:
    """BAGEL's `captions` cell: a JSON string of an object, one of whose values is drawn per visit."""
    return json.dumps({"prompt": caption}, ensure_ascii=False)


def write_t2i_shards(pairs: list[ExportedPair], images: Path, folder: Path, num_shards: int) -> list[dict[str, Any]]:
    """Generation halves as `part-XXXXX.parquet` (rows round-robin over shards); returns `{file, rows}` per shard."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for shard in tqdm(range(num_shards), desc="t2i shards", unit="shard"):
        rows = pairs[shard::num_shards]
        dest = folder / f"part-{shard:05d}.parquet"
        tmp = folder / f".{dest.name}.tmp"  # not `*.parquet`: BAGEL lists every such file in the folder
        with pq.ParquetWriter(tmp, T2I_SCHEMA) as writer:
            for start in range(0, len(rows), ROWS_PER_ROW_GROUP):
                group = rows[start : start + ROWS_PER_ROW_GROUP]
                columns = {
                    "image": [(images / p.gen_image).read_bytes() for p in group],
                    "captions": [captions_json(p.caption) for p in group],
                    "pair_id": [p.pair_id for p in group],
                    "tag": [p.gen_tag for p in group],
                }
                writer.write_table(pa.table(columns, schema=T2I_SCHEMA))
        os.replace(tmp, dest)
        shards.append({"file": dest.name, "rows": len(rows)})
    return shards


def dataset_info(out: Path, name: str, pairs: int, shards: int) -> dict[str, dict[str, dict[str, Any]]]:
    """The entries BAGEL's `DATASET_INFO` needs per group (absolute paths of the final folder)."""
    images = str(out / "images")
    return {
        "t2i_pretrain": {f"{name}_gen": {"data_dir": str(out / "t2i"), "num_files": shards, "num_total_samples": pairs}},
        "vlm_sft": {
            f"{name}_und": {"data_dir": images, "jsonl_path": str(out / "vlm" / f"{name}.jsonl"),
                            "num_total_samples": pairs}
        },
        "pairug_paired": {
            name: {"data_dir": images, "jsonl_path": str(out / "paired" / f"{name}.jsonl"), "num_total_samples": pairs}
        },
    }  # fmt: skip


def paired_yaml(name: str, pairs: int) -> dict[str, Any]:
    """One mandatory group whose every sample is a whole pair (both halves in the same pack)."""
    return {
        "pairug_paired": {
            "dataset_names": [name],
            "image_transform_args": dict(VAE_TRANSFORM),
            "vit_image_transform_args": dict(VIT_TRANSFORM),
            "is_mandatory": True,
            "shuffle_lines": True,
            "shuffle_seed": 0,
            "num_used_data": [pairs],
            "weight": 1,
        }
    }


def mix_yaml(name: str, pairs: int, shards: int) -> dict[str, Any]:
    """BAGEL's stock classes at U:G 1:1 by samples: both groups mandatory (a pack without a VAE or without a ViT
    image crashes the trainer), weight 1 each. Pair halves are read in independent orders."""
    return {
        "t2i_pretrain": {
            "dataset_names": [f"{name}_gen"],
            "image_transform_args": dict(VAE_TRANSFORM),
            "is_mandatory": True,
            "num_used_data": [shards],
            "weight": 1,
        },
        "vlm_sft": {
            "dataset_names": [f"{name}_und"],
            "image_transform_args": dict(VIT_TRANSFORM),
            "frame_sampler_args": dict(FRAME_SAMPLER),
            "is_mandatory": True,
            "shuffle_lines": True,
            "shuffle_seed": 0,
            "num_used_data": [pairs],
            "weight": 1,
        },
    }


def check_layout(pairs: int, num_shards: int, layout: Layout) -> None:
    """Every worker must get at least one shard and one line, and no shard may go unread or empty."""
    units = layout.ranks * layout.workers
    if num_shards < units or num_shards % units:
        raise ValueError(
            f"--num-shards {num_shards}: BAGEL gives each of {layout.ranks} ranks x {layout.workers} workers "
            f"(num_shards // {units}) whole files and never reads the rest; "
            f"fix: pass a multiple of {units} (e.g. --num-shards {units})"
        )
    if pairs < num_shards:
        raise ValueError(
            f"{pairs} pair(s) cannot fill {num_shards} shards; fix: pass fewer --num-shards, --ranks or --workers"
        )


def build_report(args: argparse.Namespace, pairs: list[ExportedPair], errors: list[str], shards: list[dict],
                 store: ImageStore, cleaned: int, layout: Layout) -> dict[str, Any]:  # fmt: skip
    n = len(pairs)
    return {
        "source": str(args.pairs.resolve()),
        "name": args.name,
        "counts": {
            "pairs": n,
            "by_type": dict(Counter(p.pair_type for p in pairs)),
            "t2i_rows": sum(s["rows"] for s in shards),
            "vlm_lines": n,
            "paired_lines": n,
            "distinct_images": store.count(),
            "questions_with_image_markers_removed": cleaned,
        },
        "dropped": {"count": len(errors), "lines": errors},
        "shards": shards,
        "layout": {
            "ranks": layout.ranks,
            "workers": layout.workers,
            "t2i_files_per_worker": layout.per_worker(len(shards)),
            "jsonl_lines_per_worker": layout.per_worker(n),
            # BAGEL shuffles the lines once with a fixed seed, so the same remainder is skipped on every pass.
            "jsonl_lines_never_read": layout.unused(n),
        },
        "yaml": {"paired": "bagel_paired.yaml", "mix": "bagel_mix.yaml"},
    }


def write_folder(args: argparse.Namespace, staging: Path, final: Path, layout: Layout) -> dict[str, Any]:
    """Everything into `staging`, with paths that point at `final` (where the folder will be renamed to)."""
    root = args.image_root or args.pairs.parent
    scanned, errors = load_pairs(args.pairs, root, args.skip_invalid)
    num_shards = args.num_shards or layout.ranks * layout.workers
    check_layout(len(scanned), num_shards, layout)
    store = ImageStore(staging / "images")
    pairs, cleaned = export_pairs(scanned, root, store)
    shards = write_t2i_shards(pairs, staging / "images", staging / "t2i", num_shards)
    write_jsonl(staging / "vlm" / f"{args.name}.jsonl", [vlm_record(p) for p in pairs])
    write_jsonl(staging / "paired" / f"{args.name}.jsonl", [paired_record(p) for p in pairs])
    atomic_write_json(staging / "dataset_info.json", dataset_info(final, args.name, len(pairs), num_shards))
    for file, config in (("bagel_paired.yaml", paired_yaml(args.name, len(pairs))),
                         ("bagel_mix.yaml", mix_yaml(args.name, len(pairs), num_shards))):  # fmt: skip
        atomic_write_text(staging / file, yaml.safe_dump(config, sort_keys=False))
    report = build_report(args, pairs, errors, shards, store, cleaned, layout)
    if report["layout"]["jsonl_lines_never_read"]:
        logger.warning("%d of %d lines are never read at %d ranks x %d workers (BAGEL drops the remainder); "
                       "pass the --ranks/--workers of the run", report["layout"]["jsonl_lines_never_read"],
                       len(pairs), layout.ranks, layout.workers)  # fmt: skip
    atomic_write_json(staging / "export_report.json", report)
    return report


def export(args: argparse.Namespace) -> dict[str, Any]:
    """Build the folder in `<out>.partial` (kept and reused on failure), then rename it to `<out>`."""
    final = args.out.resolve()
    if final.exists() and not args.overwrite:
        raise ValueError(f"{final} exists; fix: pass --overwrite or another --out")
    staging = final.with_name(final.name + ".partial")
    for stale in ("t2i", "vlm", "paired"):  # images are content-named and reused; the rest is rewritten
        shutil.rmtree(staging / stale, ignore_errors=True)
    layout = Layout(args.ranks, args.workers)
    report = write_folder(args, staging, final, layout)
    if final.exists():
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old)
    else:
        os.replace(staging, final)
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=Path, required=True, help="PairUG JSONL (or data_tools.random_pairs output)")
    p.add_argument("--out", type=Path, required=True, help="output folder (built beside it, then renamed)")
    p.add_argument("--image-root", type=Path, help="root for relative image paths (default: the JSONL's folder)")
    p.add_argument("--name", default="pairug", help="dataset name in dataset_info.json and the YAMLs")
    p.add_argument("--num-shards", type=int, help="t2i parquet shards (default: --ranks x --workers)")
    p.add_argument("--ranks", type=int, default=DEFAULT_RANKS, help="GPUs the export must feed (world size)")
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="BAGEL --num_workers per rank")
    p.add_argument("--skip-invalid", action="store_true", help="drop invalid lines (listed in the report)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    args = p.parse_args(argv)
    if args.ranks < 1 or args.workers < 1 or (args.num_shards is not None and args.num_shards < 1):
        p.error("--ranks, --workers and --num-shards must be positive")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        report = export(args)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err
    counts = report["counts"]
    print(
        f"exported {counts['pairs']} pairs ({counts['distinct_images']} distinct images, "
        f"{len(report['shards'])} t2i shards, {report['dropped']['count']} dropped) to {args.out}"
    )
    return report


if __name__ == "__main__":
    main()
