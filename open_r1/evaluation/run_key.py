"""Output folders that belong to one run: a run key (model, data, settings) recorded in `<out_dir>/run_key.json`,
checked before any work, and an exclusive lock while a driver writes.

A rerun resumes only when its key equals the recorded one; any other model, data file content or output-changing
setting (including `--limit`) is refused with the fix (`--overwrite` or another `--out_dir`), so predictions,
images and `results.json` of different runs never mix (issue 17). Speed-only flags (batch sizes, device) are not
part of the key, so a resumed run may change them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from data_tools.jsonl import atomic_write_text

logger = logging.getLogger(__name__)

KEY_FILE = "run_key.json"
LOCK_FILE = ".lock"
# Files of a checkpoint folder that decide what it computes (weights, index, config, tokenizer).
MODEL_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json", ".model")


class RunKeyMismatch(ValueError):
    """The output folder holds another run's outputs."""


def model_identity(model_path: str | Path) -> dict[str, Any]:
    """The checkpoint as path + (size, mtime) of each weight/config/tokenizer file: cheap for a 7B model, and any
    re-export, copy or edit of the weights changes it."""
    path = Path(model_path).resolve()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES)
    else:
        raise ValueError(f"--model_path {model_path} does not exist; pass a local checkpoint folder.")
    return {"path": str(path), "files": {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_identity(paths: Sequence[str | Path]) -> dict[str, str]:
    """`{absolute path: sha256}` of the benchmark files: a changed answer key is a different run."""
    return {str(Path(p).resolve()): file_sha256(p) for p in paths}


def make_key(benchmark: str, model_path: str | Path, data: Sequence[str | Path], settings: Mapping[str, Any]) -> dict:
    """The run key, normalised through JSON so it compares equal to the one read back from disk."""
    key = {
        "benchmark": benchmark,
        "model": model_identity(model_path),
        "data": data_identity(data),
        "settings": dict(settings),
    }
    return json.loads(json.dumps(key, sort_keys=True))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat |= _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return flat
    return {prefix: value}


def key_differences(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 6) -> list[str]:
    """Human-readable `field: old -> new` lines for the fields that differ (at most `limit`)."""
    before, after = _flatten(dict(old)), _flatten(dict(new))
    changed = [k for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)]
    lines = [f"{k}: {before.get(k, '<absent>')!r} -> {after.get(k, '<absent>')!r}" for k in changed[:limit]]
    return lines + ([f"... and {len(changed) - limit} more"] if len(changed) > limit else [])


def _check_or_record(out: Path, key: dict, existing: list[Path], overwrite: bool) -> None:
    key_path = out / KEY_FILE
    recorded = json.loads(key_path.read_text(encoding="utf-8")) if key_path.is_file() else None
    if recorded == key:
        if existing:
            logger.info("%s: same run key, resuming from %d existing output file(s)", out, len(existing))
        return
    if recorded is not None or existing:
        if not overwrite:
            why = (
                "it holds outputs of a different run:\n  " + "\n  ".join(key_differences(recorded, key))
                if recorded is not None
                else f"it holds {len(existing)} output file(s) without a {KEY_FILE} (an older or foreign run)"
            )
            raise RunKeyMismatch(
                f"--out_dir {out}: {why}\nPass --overwrite to delete them and start over, or use another --out_dir."
            )
        for path in existing:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        logger.warning("%s: --overwrite removed %d output file(s) of the previous run", out, len(existing))
    atomic_write_text(key_path, json.dumps(key, indent=2, sort_keys=True) + "\n")


@contextmanager
def claim_out_dir(
    out_dir: str | Path, key: dict, outputs: Callable[[Path], list[Path]], overwrite: bool = False
) -> Iterator[Path]:
    """Lock `out_dir` for this process and make sure it holds only this run's outputs, then yield it.

    `outputs(out_dir)` lists the files and folders this driver writes there (what `--overwrite` deletes). The lock is an
    `flock`, released by the kernel even on SIGKILL, so a killed run never blocks its own resume.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / LOCK_FILE).open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"--out_dir {out}: another evaluation is writing into it; wait for it or use another --out_dir."
            ) from None
        _check_or_record(out, key, outputs(out), overwrite)
        yield out
