"""Training output -> a folder that `janus.load_pretrained` loads (transformers format), optionally also the
original DeepSeek layout (`janus.export_original`) for the official Janus code and other tools.

Sources, found by `resolve_source`:
- a saved model folder (config.json + weights: `janus.save_pretrained`, the trainer's final save and checkpoints);
- a DeepSpeed ZeRO checkpoint: the folder holding `latest` (HF's `checkpoint-N/`), one `global_stepN/` folder, or
  a training output dir (its last `checkpoint-N/`, or `step`). The fp32 master weights are consolidated with
  DeepSpeed's `get_fp32_state_dict_from_zero_checkpoint` and mapped onto the `JanusForConditionalGeneration`
  state dict (wrapper prefixes such as "module." stripped); config and tokenizer come from the checkpoint folder,
  its parent, or `base_model`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from open_r1.evaluation.common import DTYPES

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration

    from janus import JanusProcessor


logger = logging.getLogger(__name__)

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
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
        folder = checkpoints(path)[-1]
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
    config.image_token_id = janus.SpecialTokens.from_tokenizer(load_tokenizer(config_dir)).image_id
    with init_empty_weights(include_buffers=False):  # no random init: every weight comes from the checkpoint
        model = JanusForConditionalGeneration(config)
    processor = janus.JanusProcessor.from_folder(config_dir, load_tokenizer(config_dir), config)
    return model, processor, True


def _default_dtype(model: JanusForConditionalGeneration) -> torch.dtype:
    stored = getattr(model.config, "dtype", None)
    if isinstance(stored, torch.dtype):
        return stored
    return DTYPES.get(str(stored), torch.float32)


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


def export_checkpoint(
    path: str | Path,
    out_dir: str | Path,
    *,
    base_model: str | Path | None = None,
    original_dir: str | Path | None = None,
    step: int | None = None,
    prefer: str = "auto",
    dtype: torch.dtype | None = None,
    verify: bool = True,
) -> Path:
    """Export the weights found under `path` to `out_dir` (transformers format) and optionally `original_dir`."""
    import janus

    source = resolve_source(path, step, prefer)
    logger.info("exporting %s weights from %s (tag %s)", source.kind, source.folder, source.tag)
    if source.kind == "model":
        model, processor = janus.load_pretrained(source.folder, dtype=dtype)
    else:
        model, processor = model_from_zero(source, Path(base_model) if base_model else None, dtype)
    out = janus.save_pretrained(model, processor, out_dir)
    if original_dir is not None:
        janus.export_original(model, processor.tokenizer, original_dir)
    if verify:
        _verify(model, out)
        if original_dir is not None:
            _verify(model, Path(original_dir))
    return out


def _verify(model: JanusForConditionalGeneration, folder: Path) -> None:
    """Reload the export and check every weight is identical to what was written."""
    import janus

    reloaded, _ = janus.load_pretrained(folder)
    expected = model.state_dict()
    for key, value in reloaded.state_dict().items():
        if not torch.equal(value.cpu(), expected[key].to(value.dtype).cpu()):
            raise RuntimeError(f"{folder}: weight {key} differs after reload; the export is corrupt.")
    logger.info("verified %s: %d tensors reload identically", folder, len(expected))
