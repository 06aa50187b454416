"""JSONL reading with line numbers, atomic writes, and the builder's input loaders.

Input loaders collect every bad line as `file:line: field: problem; fix` before anything expensive runs:
they raise at the end unless `skip_invalid=True`, in which case they log the problems and count the skips.
Loaders for local copies of Orsta-Data-47k and BLIP3o-60k live in `data_tools.sources`.
(Named `jsonl`, not `io`: `python data_tools/build_pairs.py` puts this folder on sys.path.)
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from data_tools.schema import (
    GenerationSample,
    Pair,
    SchemaError,
    UnderstandingSample,
    parse_generation,
    parse_pair,
    parse_understanding,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, Any]]:
    """Yield `("file:line", object)` for each non-blank line; malformed JSON raises `SchemaError`."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as err:
                raise SchemaError(
                    where, "<line>", f"invalid JSON ({err.msg})", "write one JSON object per line"
                ) from err


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temporary file in the same folder + `os.replace`, so readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write records as JSONL atomically (stable key order, UTF-8 kept readable)."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


@dataclass
class LoadReport:
    """What a loader kept and what it skipped (with the `file:line: field` message of each skip)."""

    kept: int = 0
    errors: list[str] = field(default_factory=list)


def _load(
    path: str | Path,
    parse: Callable[[Any, str, Path, str], T],
    image_root: str | Path | None,
    prefix: str,
    skip_invalid: bool,
) -> tuple[list[T], LoadReport]:
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    samples: list[T] = []
    report = LoadReport()
    for index, (where, obj) in enumerate(iter_jsonl(path)):
        sample_id = str(obj.get("id", f"{prefix}{index}")) if isinstance(obj, dict) else f"{prefix}{index}"
        try:
            samples.append(parse(obj, where, root, sample_id))
        except SchemaError as err:
            report.errors.append(str(err))
    report.kept = len(samples)
    if report.errors and not skip_invalid:
        shown = "\n".join(report.errors[:20])
        more = f"\n... and {len(report.errors) - 20} more" if len(report.errors) > 20 else ""
        raise ValueError(
            f"{len(report.errors)} invalid line(s) in {path} (pass --skip-invalid to drop them):\n{shown}{more}"
        )
    for message in report.errors:
        logger.warning("skipped %s", message)
    if report.errors:
        logger.warning("%s: kept %d, skipped %d invalid line(s)", path, report.kept, len(report.errors))
    return samples, report


def load_understanding(
    path: str | Path, image_root: str | Path | None = None, skip_invalid: bool = False
) -> tuple[list[UnderstandingSample], LoadReport]:
    """Understanding JSONL (`image_path`, `question`, `answer`, opt. `tag`, `options`, `id`); relative
    image paths resolve against `image_root` (default: the JSONL's folder)."""
    return _load(path, parse_understanding, image_root, "u", skip_invalid)


def load_generation(
    path: str | Path, image_root: str | Path | None = None, skip_invalid: bool = False
) -> tuple[list[GenerationSample], LoadReport]:
    """Generation JSONL (`image_path`, `prompt`, opt. `tag`, `id`); relative paths as in `load_understanding`."""
    return _load(path, parse_generation, image_root, "g", skip_invalid)


def read_pairs(path: str | Path) -> list[tuple[str, Pair]]:
    """All pairs of a pair JSONL as `("file:line", Pair)`; the first schema error raises `SchemaError`."""
    return [(where, parse_pair(obj, where)) for where, obj in iter_jsonl(path)]
