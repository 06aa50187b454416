"""JSONL reading with line numbers, atomic writes, and the builder's input loaders.

Input loaders collect every bad line as `file:line: field: problem; fix` before anything expensive runs (bytes
that are not UTF-8, malformed JSON, schema errors, duplicate ids, images that are missing or do not decode): they
raise at the end unless `skip_invalid=True`, in which case they log the problems and count the skips.
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
    check_images,
    pair_image_errors,
    parse_generation,
    parse_pair,
    parse_understanding,
    undecodable_images,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def iter_jsonl(path: str | Path, on_error: Callable[[SchemaError], None] | None = None) -> Iterator[tuple[str, Any]]:
    """Yield `("file:line", object)` for each non-blank line.

    A line that is not UTF-8 or not JSON raises `SchemaError`, or, when `on_error` is given, is handed to it and
    skipped, so a caller can list every bad line instead of stopping at the first (`--skip-invalid`).
    """
    path = Path(path)
    with path.open("rb") as f:  # bytes, so one non-UTF-8 line is reported with its line number
        for line_no, raw in enumerate(f, start=1):
            where = f"{path}:{line_no}"
            try:
                line = _decode_line(raw, where)
                if not line.strip():
                    continue
                yield where, _parse_line(line, where)
            except SchemaError as err:
                if on_error is None:
                    raise
                on_error(err)


def _decode_line(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8-sig")  # -sig: a byte-order mark some editors write is not part of the JSON
    except UnicodeDecodeError as err:
        raise SchemaError(
            where,
            "<line>",
            f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})",
            "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.jsonl > out.jsonl`)",
        ) from err


def _parse_line(line: str, where: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise SchemaError(where, "<line>", f"invalid JSON ({err.msg})", "write one JSON object per line") from err


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
    parsed: list[tuple[str, T]] = []
    errors: list[SchemaError] = []
    first_seen: dict[str, str] = {}
    for index, (where, obj) in enumerate(iter_jsonl(path, errors.append)):
        sample_id = str(obj.get("id", f"{prefix}{index}")) if isinstance(obj, dict) else f"{prefix}{index}"
        try:
            if sample_id in first_seen:
                raise SchemaError(where, "id", f"duplicate id {sample_id!r} (first at {first_seen[sample_id]})",
                                  "give every line a unique id")  # fmt: skip
            parsed.append((where, parse(obj, where, root, sample_id)))
            first_seen[sample_id] = where
        except SchemaError as err:
            errors.append(err)
    # Decode every image now: a corrupt file would otherwise crash the features stage (issue 10).
    bad = undecodable_images(sample.image_path for _, sample in parsed)
    errors += [SchemaError(where, "image_path", bad[s.image_path], "replace the file or drop the line")
               for where, s in parsed if s.image_path in bad]  # fmt: skip
    samples = [s for _, s in parsed if s.image_path not in bad]
    report = LoadReport(len(samples), [str(e) for e in sorted(errors, key=lambda e: e.line_no)])
    if report.errors and not skip_invalid:
        raise ValueError(
            f"{len(report.errors)} invalid line(s) in {path} (fix them, or pass --skip-invalid to drop them):\n"
            + "\n".join(report.errors)
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


def scan_pairs(
    path: str | Path, image_root: Path, check_files: bool = True
) -> tuple[list[tuple[str, Pair]], list[str]]:
    """Every line of a pair JSONL checked: the valid `("file:line", Pair)`s and the other lines' error messages
    (file order). With `check_files` both images must exist and decode. Shared by `data_tools.validate` and the
    training loader, so both report the same problems."""
    return scan_lines(path, image_root, parse_pair, check_files)


def scan_lines(
    path: str | Path, image_root: Path, parse: Callable[[Any, str], T], check_files: bool = True
) -> tuple[list[tuple[str, T]], list[str]]:
    """`scan_pairs` with another line parser (`parse(obj, "file:line")` raising `SchemaError`); only the parsed
    `Pair`s have images to check (e.g. UniRL self rows, data_tools.unirl_rows, have none)."""
    errors: list[SchemaError] = []
    parsed: list[tuple[str, T]] = []
    for where, obj in iter_jsonl(path, errors.append):
        try:
            item = parse(obj, where)
            if check_files and isinstance(item, Pair):
                check_images(item, where, image_root)
            parsed.append((where, item))
        except SchemaError as err:
            errors.append(err)
    pairs = [(where, item) for where, item in parsed if isinstance(item, Pair)]
    bad_images = pair_image_errors(pairs, image_root) if check_files else {}
    errors += bad_images.values()
    valid = [(where, item) for where, item in parsed if where not in bad_images]
    return valid, [str(e) for e in sorted(errors, key=lambda e: e.line_no)]
