"""Convert local copies of the paper's inputs into the builder's JSONL + image folders (no download).

    python -m data_tools.sources orsta  --src Orsta-Data-47k/  --out data/orsta    # train/*.parquet (verl format)
    python -m data_tools.sources blip3o --src BLIP3o-60k/      --out data/blip3o   # *.tar (webdataset)

Orsta-Data-47k rows (V-Triune's verl format): `prompt` (list of {content, role}; the user turn holds the
question with an `<image>` marker), `images` (list of {bytes, path}), `reward_model` ({answer, ground_truth, ...}:
`answer` is the gold answer, `ground_truth` its `\\boxed{}` form), `ability` / `data_source` (task), `extra_info`
({id, image_path}). Only `train/` is read: `test/` holds the authors' online-evaluation samples. Detection and
grounding rows are dropped, as the paper did. BLIP3o-60k tar shards hold `<key>.jpg|png` + `<key>.txt` (the
prompt), the key being the member name up to the first dot of its file name; the shard name becomes the tag.
Images are written under `<out>/images/`; the JSONL goes to `<out>/understanding.jsonl` or `<out>/generation.jsonl`.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

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


def gold_answer(reward_model) -> str:
    """Orsta's gold answer: `reward_model.answer` ("4", "B"); `ground_truth` is the formatted solution
    ("\\boxed{4}") and is used, unboxed, only when `answer` is empty."""
    if isinstance(reward_model, str):
        reward_model = json.loads(reward_model)
    answer = str(reward_model.get("answer") or "").strip()
    if answer:
        return answer
    truth = str(reward_model.get("ground_truth") or "").strip()
    boxed = re.fullmatch(r"\\boxed\{(.*)\}", truth, flags=re.DOTALL)
    return boxed.group(1).strip() if boxed else truth


def orsta_parquets(src: Path) -> list[Path]:
    """The training parquet files under `src`; anything in a `test` folder or named `test_*` is never read."""
    files = sorted(src.rglob("*.parquet"))
    kept = [f for f in files if "test" not in f.relative_to(src).parts[:-1] and not f.name.startswith("test_")]
    if len(kept) < len(files):
        logger.info("orsta: ignoring %d test-split file(s) (held out for evaluation)", len(files) - len(kept))
    return kept


def _image_suffix(data: bytes) -> str:
    """File suffix from the image bytes themselves (Orsta stores JPEG and PNG bytes alike)."""
    with Image.open(io.BytesIO(data)) as image:
        return {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}.get(image.format or "", ".png")


def orsta_records(src: Path, out: Path) -> Iterator[dict]:
    """Understanding records from Orsta's training parquet files; writes each row's first image to `out/images/`."""
    import pyarrow.parquet as pq

    dropped: Counter = Counter()
    for parquet in orsta_parquets(src):
        for i, row in enumerate(pq.read_table(parquet).to_pylist()):
            task = f"{row.get('ability', '')}/{row.get('data_source', '')}".lower()
            if any(t in task for t in DROPPED_TASKS) or any(t in parquet.stem.lower() for t in DROPPED_TASKS):
                dropped[parquet.stem] += 1
                continue
            images = row.get("images") or []
            if not images or not images[0].get("bytes"):
                dropped["no_image"] += 1
                continue
            data = images[0]["bytes"]
            rel = f"images/{parquet.stem}_{i:06d}{_image_suffix(data)}"
            (out / rel).write_bytes(data)
            tag = str(row.get("ability") or row.get("data_source") or parquet.stem)
            row_id = (row.get("extra_info") or {}).get("id")
            sample_id = f"{parquet.stem}/{row_id}" if row_id not in (None, "") else f"{parquet.stem}_{i}"
            yield {"id": sample_id, "image_path": rel, "question": _question(row["prompt"]),
                   "answer": gold_answer(row["reward_model"]), "tag": tag}  # fmt: skip
    logger.info("orsta: dropped %s", dict(dropped))


def sample_key(member_name: str) -> tuple[str, str]:
    """Webdataset key and extension of a tar member: the name up to the first dot of the FILE name, so
    `a.v2/0001.jpg` -> (`a.v2/0001`, `.jpg`) and `0001.seg.png` -> (`0001`, `.seg.png`)."""
    folder, _, name = member_name.rpartition("/")
    stem, dot, ext = name.partition(".")
    return (f"{folder}/{stem}" if folder else stem), f"{dot}{ext}".lower()


def blip3o_records(src: Path, out: Path) -> Iterator[dict]:
    """Generation records from BLIP3o webdataset shards; images are extracted to `out/images/<shard>/<key>`."""
    for shard in sorted(src.rglob("*.tar")):
        groups: dict[str, dict[str, bytes]] = {}
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.isfile():
                    key, ext = sample_key(member.name)
                    groups.setdefault(key, {})[ext] = tar.extractfile(member).read()
        for key, files in sorted(groups.items()):
            image_ext = next((e for e in IMAGE_SUFFIXES if e in files), None)
            if image_ext is None or ".txt" not in files:
                logger.warning("%s: sample %s lacks an image or a .txt prompt; skipped", shard, key)
                continue
            if key.startswith("/") or ".." in key.split("/"):
                logger.warning("%s: sample %s points outside the output folder; skipped", shard, key)
                continue
            rel = f"images/{shard.stem}/{key}{image_ext}"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(files[image_ext])
            try:
                prompt = files[".txt"].decode("utf-8").strip()
            except UnicodeDecodeError:
                logger.warning(
                    "%s: sample %s: %s.txt is not UTF-8; skipped (fix: re-encode the caption)", shard, key, key
                )
                continue
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
