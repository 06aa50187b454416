"""Convert local copies of the paper's inputs into the builder's JSONL + image folders (no download).

    python -m data_tools.sources orsta  --src Orsta-Data-47k/  --out data/orsta    # *.parquet (verl format)
    python -m data_tools.sources blip3o --src BLIP3o-60k/      --out data/blip3o   # *.tar (webdataset)

Orsta-Data-47k parquet rows (V-Triune's verl format): `prompt` (chat messages; the user turn holds the
question), `images` (list of {bytes}), `reward_model.ground_truth` (the answer), `ability` /
`data_source` (task). Detection and grounding rows are dropped, as the paper did. BLIP3o-60k tar shards
hold `<key>.jpg|png` + `<key>.txt` (the prompt); the shard name becomes the tag. Images are written under
`<out>/images/`; the JSONL goes to `<out>/understanding.jsonl` or `<out>/generation.jsonl`.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from data_tools.jsonl import write_jsonl

logger = logging.getLogger(__name__)
DROPPED_TASKS = ("detection", "grounding")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _question(prompt) -> str:
    """The last user turn of a verl chat prompt, without the `<image>` placeholder."""
    if isinstance(prompt, str):
        return prompt.replace("<image>", "").strip()
    turns = [m for m in prompt if m.get("role") == "user"] or list(prompt)
    return str(turns[-1].get("content", "")).replace("<image>", "").strip()


def _ground_truth(reward_model) -> str:
    if isinstance(reward_model, str):
        reward_model = json.loads(reward_model)
    return str(reward_model.get("ground_truth", "")).strip()


def orsta_records(src: Path, out: Path) -> Iterator[dict]:
    """Understanding records from Orsta parquet files; writes each row's first image to `out/images/`."""
    import pyarrow.parquet as pq

    dropped: Counter = Counter()
    for parquet in sorted(src.rglob("*.parquet")):
        for i, row in enumerate(pq.read_table(parquet).to_pylist()):
            task = f"{row.get('ability', '')}/{row.get('data_source', '')}".lower()
            if any(t in task for t in DROPPED_TASKS) or any(t in parquet.stem.lower() for t in DROPPED_TASKS):
                dropped[parquet.stem] += 1
                continue
            images = row.get("images") or []
            if not images or not images[0].get("bytes"):
                dropped["no_image"] += 1
                continue
            rel = f"images/{parquet.stem}_{i:06d}.png"
            (out / rel).write_bytes(images[0]["bytes"])
            tag = str(row.get("ability") or row.get("data_source") or parquet.stem)
            yield {"id": f"{parquet.stem}_{i}", "image_path": rel, "question": _question(row["prompt"]),
                   "answer": _ground_truth(row["reward_model"]), "tag": tag}  # fmt: skip
    logger.info("orsta: dropped %s", dict(dropped))


def blip3o_records(src: Path, out: Path) -> Iterator[dict]:
    """Generation records from BLIP3o webdataset shards; images are extracted to `out/images/<shard>/`."""
    for shard in sorted(src.rglob("*.tar")):
        groups: dict[str, dict[str, bytes]] = {}
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.isfile():
                    key, _, ext = member.name.partition(".")
                    groups.setdefault(key, {})[f".{ext.lower()}"] = tar.extractfile(member).read()
        (out / "images" / shard.stem).mkdir(parents=True, exist_ok=True)
        for key, files in sorted(groups.items()):
            image_ext = next((e for e in IMAGE_SUFFIXES if e in files), None)
            if image_ext is None or ".txt" not in files:
                logger.warning("%s: sample %s lacks an image or a .txt prompt; skipped", shard, key)
                continue
            rel = f"images/{shard.stem}/{Path(key).name}{image_ext}"
            (out / rel).write_bytes(files[image_ext])
            prompt = io.TextIOWrapper(io.BytesIO(files[".txt"]), encoding="utf-8").read().strip()
            yield {"id": f"{shard.stem}/{key}", "image_path": rel, "prompt": prompt, "tag": shard.stem}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=("orsta", "blip3o"))
    parser.add_argument("--src", type=Path, required=True, help="local copy of the dataset (folder)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (JSONL + images/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.src.is_dir():
        raise SystemExit(f"--src {args.src}: not a folder; fix: point to the local dataset copy")
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    if args.source == "orsta":
        records, name = list(orsta_records(args.src, args.out)), "understanding.jsonl"
    else:
        records, name = list(blip3o_records(args.src, args.out)), "generation.jsonl"
    write_jsonl(args.out / name, records)
    logger.info("wrote %d records to %s", len(records), args.out / name)


if __name__ == "__main__":
    main()
