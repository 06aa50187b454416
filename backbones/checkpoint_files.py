"""Writing a checkpoint into a folder that may already hold one: the folder never loads the older weights, a crash
mid-way never leaves it loading them, and every file that is not part of a checkpoint stays (a training run's output
folder also holds metrics, samples and `checkpoint-*` folders)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing_checkpoint(out: Path, stale: Iterable[Path]) -> Iterator[Path]:
    """Yield an empty staging folder inside `out`; on a clean exit, remove `stale` and move the staged entries in.

    `stale` are the files and folders of the earlier checkpoint that the new one replaces or outdates (other weight
    layouts, shards of another count, their index). They go first, so a crash between the two steps leaves a folder
    that refuses to load rather than one that loads old weights; each rename within `out` is atomic. On an error
    inside the block nothing in `out` changes.
    """
    out.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".saving.", dir=out))
    try:
        yield staged
        for path in stale:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        for entry in staged.iterdir():
            os.replace(entry, out / entry.name)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def indexed_shards(index_file: Path) -> set[Path]:
    """The shard files a `*.index.json` weight index lists (none when it is absent), beside the index."""
    if not index_file.is_file():
        return set()
    weight_map = json.loads(index_file.read_text(encoding="utf-8")).get("weight_map", {})
    return {index_file.parent / name for name in weight_map.values()}
