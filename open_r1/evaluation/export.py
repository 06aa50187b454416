"""Training output -> a folder that `janus.load_pretrained` loads (transformers format), optionally also the
original DeepSeek layout (`janus.export_original`) for the official Janus code and other tools.

Sources, found by `resolve_source`:
- a saved model folder (config.json + weights: `janus.save_pretrained`, the trainer's final save and checkpoints);
- a DeepSpeed ZeRO checkpoint: the folder holding `latest` (HF's `checkpoint-N/`), one `global_stepN/` folder, or
  a training output dir (its last `checkpoint-N/`, or `step`). The fp32 master weights are consolidated with
  DeepSpeed's `get_fp32_state_dict_from_zero_checkpoint` and mapped onto the `JanusForConditionalGeneration`
  state dict (wrapper prefixes such as "module." stripped); config and tokenizer come from the checkpoint folder,
  its parent, or `base_model`.

Targets are never half-written: everything is written to a temporary sibling folder, verified there, then moved
into place. A non-empty target is refused unless `overwrite=True`, which first removes every previous weight and
index file there (a stale shard index would otherwise be loaded instead of the new weights).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from janus.checkpoint import WEIGHT_FILES, resolve_dtype, verify_checkpoint_files
from open_r1.run_dir import missing_marker

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration

    from janus import JanusProcessor


logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"checkpoint-(\d+)$")


@dataclass
class ExportSource:
    """Where the weights come from: a saved model folder, or a ZeRO checkpoint folder plus its tag."""

    kind: str  # "model" | "zero"
    folder: Path
    tag: str | None = None


def has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / name).is_file() for name in WEIGHT_FILES)


def zero_tag(folder: Path) -> str | None:
    """The ZeRO tag of `folder`: the content of `latest`, else its only `global_step*` folder with model states."""
    latest = folder / "latest"
    if latest.is_file():
        return latest.read_text(encoding="utf-8").strip()
    tags = [p.name for p in folder.glob("global_step*") if any(p.glob("*model_states.pt"))]
    return tags[0] if len(tags) == 1 else None


def checkpoints(output_dir: Path) -> list[Path]:
    """`checkpoint-N` subfolders in increasing N."""
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_source(path: str | Path, step: int | None = None, prefer: str = "auto") -> ExportSource:
    """Find the weights under `path`. prefer: "auto" (saved weights, else ZeRO), "model" or "zero"."""
    if prefer not in ("auto", "model", "zero"):
        raise ValueError(f"prefer={prefer!r}; use 'auto', 'model' or 'zero'.")
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder; pass a training output dir, checkpoint-N/ or a saved model.")
    if path.name.startswith("global_step") and any(path.glob("*model_states.pt")):
        if prefer == "model":
            raise ValueError(
                f"{path} holds DeepSpeed ZeRO shards, not saved model weights, but --source model was asked; pass "
                f"its checkpoint folder {path.parent} (saved weights) or use --source zero / auto for these shards."
            )
        if (problem := missing_marker(path.parent)) is not None:
            raise ValueError(f"{problem}; fix: export an earlier complete checkpoint")
        return ExportSource("zero", path.parent, path.name)

    def usable(folder: Path) -> bool:
        return (prefer != "zero" and has_weights(folder)) or (prefer != "model" and zero_tag(folder) is not None)

    folder = path
    if step is not None:
        folder = path / f"checkpoint-{step}"
        if not folder.is_dir():
            raise ValueError(
                f"step={step}: {folder} does not exist; available: {[p.name for p in checkpoints(path)]}."
            )
    elif not usable(path) and checkpoints(path):
        complete = [p for p in checkpoints(path) if missing_marker(p) is None]
        if not complete:
            raise ValueError(f"{path}: no complete checkpoint-N ({missing_marker(checkpoints(path)[-1])}).")
        folder = complete[-1]
        if folder != checkpoints(path)[-1]:
            logger.warning(
                "Skipping checkpoints newer than %s: %s", folder.name, missing_marker(checkpoints(path)[-1])
            )
    problem = missing_marker(folder)
    if problem is not None:
        raise ValueError(f"{problem}; fix: export an earlier complete checkpoint (--step N) or the run's final folder")
    if prefer != "zero" and has_weights(folder):
        return ExportSource("model", folder)
    tag = zero_tag(folder) if prefer != "model" else None
    if tag is not None:
        return ExportSource("zero", folder, tag)
    raise ValueError(
        f"{folder}: no model weights (config.json + {WEIGHT_FILES[0]} or .bin) and no ZeRO checkpoint ('latest' or "
        f"global_step*/ with *_model_states.pt) for prefer={prefer!r}."
    )


def _strip_prefix(keys: list[str], expected: Mapping[str, Any]) -> str:
    """The wrapper prefix ("", "module.", ...) under which the most expected keys appear in `keys`."""
    probes = [k for k in ("lm_head.weight", *list(expected)[:8]) if k in expected]
    candidates = {key[: len(key) - len(probe)] for probe in probes for key in keys if key.endswith(probe)}
    candidates = {c for c in candidates if c == "" or c.endswith(".")}
    if not candidates:
        return ""
    key_set = set(keys)
    return max(sorted(candidates), key=lambda c: sum(f"{c}{k}" in key_set for k in expected))


def map_state_dict(
    state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size]
) -> dict[str, torch.Tensor]:
    """Rename a consolidated training state dict onto the model's keys; every expected key must be present with its
    shape. Keys outside the model (e.g. a wrapper's extra heads) are dropped with a warning."""
    prefix = _strip_prefix(list(state_dict), expected)
    mapped = {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
    extra = sorted(set(state_dict) - {prefix + k for k in expected})
    if extra:
        logger.warning("ignoring %d keys that are not model weights, e.g. %s", len(extra), extra[:5])
    missing = sorted(set(expected) - set(mapped))
    wrong = [
        f"{k}: {tuple(mapped[k].shape)} vs {tuple(s)}"
        for k, s in expected.items()
        if k in mapped and mapped[k].shape != s
    ]
    if missing or wrong:
        raise ValueError(
            f"checkpoint does not match the model (prefix {prefix!r}): missing {len(missing)} keys {missing[:5]}, "
            f"shape mismatches (checkpoint vs model) {wrong[:5]}; pass the --base_model the run was trained from."
        )
    return {k: mapped[k] for k in expected}


def load_zero_state_dict(folder: Path, tag: str | None) -> dict[str, torch.Tensor]:
    """fp32 weights consolidated from all ranks' ZeRO shards (DeepSpeed's own reader)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    return get_fp32_state_dict_from_zero_checkpoint(str(folder), tag=tag)


def _config_folder(folder: Path, base_model: Path | None) -> Path:
    """Where config.json and tokenizer.json come from: base_model, else the checkpoint folder, else its parent."""
    candidates = [base_model] if base_model is not None else [folder, folder.parent]
    for candidate in candidates:
        if (candidate / "config.json").is_file() and (candidate / "tokenizer.json").is_file():
            return candidate
    raise ValueError(
        f"no config.json + tokenizer.json in {[str(c) for c in candidates]}; pass --base_model (the model trained from)."
    )


def _skeleton(
    config_dir: Path, dtype: torch.dtype | None
) -> tuple[JanusForConditionalGeneration, JanusProcessor, bool]:
    """(model, processor, on_meta): the loaded model when config_dir has weights, else an empty one from its config."""
    from accelerate import init_empty_weights
    from transformers import JanusConfig, JanusForConditionalGeneration

    import janus
    from janus.checkpoint import load_tokenizer

    if has_weights(config_dir):
        model, processor = janus.load_pretrained(config_dir, dtype=dtype)
        return model, processor, False
    config = JanusConfig.from_pretrained(config_dir)  # transformers-format config.json (what the trainer saves)
    config.tie_word_embeddings = config.text_config.tie_word_embeddings = False  # the shards hold their own lm_head
    config.image_token_id = janus.SpecialTokens.from_tokenizer(load_tokenizer(config_dir)).image_id
    with init_empty_weights(include_buffers=False):  # no random init: every weight comes from the checkpoint
        model = JanusForConditionalGeneration(config)
    processor = janus.JanusProcessor.from_folder(config_dir, load_tokenizer(config_dir), config)
    return model, processor, True


def _default_dtype(model: JanusForConditionalGeneration) -> torch.dtype:
    stored = getattr(model.config, "dtype", None)
    try:
        return resolve_dtype(stored) or torch.float32
    except ValueError:
        return torch.float32


def model_from_zero(
    source: ExportSource, base_model: Path | None, dtype: torch.dtype | None
) -> tuple[JanusForConditionalGeneration, JanusProcessor]:
    """A JanusForConditionalGeneration holding the consolidated ZeRO weights, and its processor."""
    model, processor, on_meta = _skeleton(_config_folder(source.folder, base_model), dtype)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    state_dict = map_state_dict(load_zero_state_dict(source.folder, source.tag), expected)
    target = dtype or _default_dtype(model)
    state_dict = {k: v.to(target) if v.is_floating_point() else v for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=on_meta)
    return model.eval(), processor


@dataclass
class ExportResult:
    """What an export wrote where (for the CLI's closing summary)."""

    source: ExportSource
    folders: dict[str, Path]  # "transformers" / "original" -> folder
    files: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # same keys -> [(file name, bytes)]
    verified: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"Exported {self.source.kind} weights from {self.source.folder}"
            + (f" ({self.source.tag})" if self.source.tag else "")
        ]
        for kind, folder in self.folders.items():
            size = sum(n for _, n in self.files.get(kind, []))
            names = ", ".join(name for name, _ in self.files.get(kind, []))
            lines.append(f"  {kind:<12} {folder}  ({size / 2**20:.1f} MiB: {names})")
        lines.append(f"  verified: {'every weight reloads identically' if self.verified else 'skipped (--no_verify)'}")
        lines.append(f"  took {self.seconds:.1f}s")
        return "\n".join(lines)


@contextmanager
def _step(message: str) -> Iterator[None]:
    """Log a long step when it starts and when it ends, with its duration (progress for multi-minute exports)."""
    logger.info("%s ...", message)
    start = time.perf_counter()
    yield
    logger.info("%s: done in %.1fs", message, time.perf_counter() - start)


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def check_targets(targets: dict[str, Path], source: Path, overwrite: bool) -> None:
    """Refuse targets that collide with each other or the source, and non-empty ones without `overwrite`."""
    resolved = {kind: folder.resolve() for kind, folder in targets.items()}
    if len(set(resolved.values())) < len(resolved):
        raise ValueError(
            f"--out_dir and --original_dir are the same folder ({next(iter(resolved.values()))}); the two formats "
            "need separate folders: pass a different --original_dir."
        )
    for kind, folder in resolved.items():
        if _inside(folder, source.resolve()) or _inside(source.resolve(), folder):
            raise ValueError(f"{kind} target {folder} overlaps the source {source}; export into a separate folder.")
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{kind} target {folder} exists and is not a folder; pass a folder path.")
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            raise ValueError(
                f"{kind} target {folder} is not empty ({', '.join(sorted(p.name for p in folder.iterdir())[:5])}); "
                "pass a new or empty folder, or --overwrite to replace its weights, configs and tokenizer files."
            )


def _is_weight_file(path: Path) -> bool:
    return path.suffix in (".safetensors", ".bin") or path.name.endswith(".index.json")


def _install(staged: Path, target: Path) -> None:
    """Move a finished, verified export into `target`: a rename when the target is new or empty; otherwise (only
    with overwrite) remove every previous weight/index file and the files being replaced, then move the new files."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(target)
        return
    for old in target.iterdir():
        if old.is_file() and (_is_weight_file(old) or (staged / old.name).exists()):
            old.unlink()
    for new in staged.iterdir():
        new.rename(target / new.name)
    staged.rmdir()


def _listing(folder: Path) -> list[tuple[str, int]]:
    return [(p.name, p.stat().st_size) for p in sorted(folder.iterdir()) if p.is_file()]


def _load_source(
    source: ExportSource, base_model: Path | None, dtype: torch.dtype | None
) -> tuple[JanusForConditionalGeneration, JanusProcessor]:
    import janus

    with _step(f"checking the files of {source.folder}"):
        verify_checkpoint_files(source.folder, include_zero=source.kind == "zero")
    if source.kind == "model":
        with _step(f"loading saved weights from {source.folder}"):
            return janus.load_pretrained(source.folder, dtype=dtype)
    with _step(f"consolidating ZeRO shards of {source.folder / str(source.tag)} (fp32, all ranks)"):
        return model_from_zero(source, base_model, dtype)


def export_checkpoint(
    path: str | Path,
    out_dir: str | Path,
    *,
    base_model: str | Path | None = None,
    original_dir: str | Path | None = None,
    step: int | None = None,
    prefer: str = "auto",
    dtype: torch.dtype | str | None = None,
    verify: bool = True,
    overwrite: bool = False,
) -> ExportResult:
    """Export the weights found under `path` to `out_dir` (transformers format) and optionally `original_dir`.

    Targets are checked before anything loads, written to temporary folders, verified (reloaded and compared)
    there and only then moved into place, so a failure leaves the targets as they were.
    """
    import janus

    start = time.perf_counter()
    dtype = resolve_dtype(dtype)
    source = resolve_source(path, step, prefer)
    targets = {"transformers": Path(out_dir)} | ({"original": Path(original_dir)} if original_dir else {})
    check_targets(targets, source.folder, overwrite)
    model, processor = _load_source(source, Path(base_model) if base_model else None, dtype)
    staged: dict[str, Path] = {}
    try:
        for kind, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            staged[kind] = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
            with _step(f"writing the {kind} format"):
                if kind == "transformers":
                    janus.save_pretrained(model, processor, staged[kind])
                else:
                    janus.export_original(model, processor.tokenizer, staged[kind])
            if verify:
                with _step(f"verifying the {kind} export (reload and compare every weight)"):
                    _verify(model, staged[kind])
        result = ExportResult(source, targets, verified=verify)
        for kind, target in targets.items():
            result.files[kind] = _listing(staged[kind])
            _install(staged.pop(kind), target)
    finally:
        for folder in staged.values():
            shutil.rmtree(folder, ignore_errors=True)
    result.seconds = time.perf_counter() - start
    return result


def _verify(model: JanusForConditionalGeneration, folder: Path) -> None:
    """Reload the export and check every weight is identical to what was written."""
    import janus

    reloaded, _ = janus.load_pretrained(folder)
    expected = model.state_dict()
    for key, value in reloaded.state_dict().items():
        if not torch.equal(value.cpu(), expected[key].to(value.dtype).cpu()):
            raise RuntimeError(f"{folder}: weight {key} differs after reload; the export is corrupt.")
    logger.info("verified %s: %d tensors reload identically", folder, len(expected))
