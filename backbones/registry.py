"""Backbone names -> implementation classes, imported lazily (this layer never imports a model package at import
time), and the name inferred from a checkpoint folder's config when `--backbone` is not given."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import torch

from backbones.interface import Backbone

# name -> "module:Class". Adding a backbone is one line here (plus its config markers below) and its package.
BACKBONES: dict[str, str] = {
    "janus": "janus.backbone:JanusBackbone",
    "lumina_dimoo": "lumina_dimoo.backbone:LuminaDiMOOBackbone",
    "showo": "showo.backbone:ShowoBackbone",
}
# config.json markers of each family's checkpoint layouts (original and converted).
_MODEL_TYPES = {"multi_modality": "janus", "janus": "janus", "llada": "lumina_dimoo"}
_CLASS_NAMES: dict[str, str] = {"Showo": "showo"}


def backbone_class(name: str) -> type[Backbone]:
    """The class registered as `name`, with an error listing the known names."""
    if name not in BACKBONES:
        raise ValueError(f"backbone={name!r} is not known; use one of {sorted(BACKBONES)}.")
    module, _, attr = BACKBONES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def installed_backbones() -> list[str]:
    """The registered backbones whose package is present in this checkout / environment."""
    return [name for name, target in BACKBONES.items() if importlib.util.find_spec(target.split(".")[0]) is not None]


def check_module_groups(groups: list[str], backbone: str | None) -> None:
    """Unknown trainable-module groups fail early: against `backbone`'s groups, or (None: not known until the
    checkpoint is read) against those of any installed backbone; the error lists the valid names."""
    names = [backbone] if backbone is not None else installed_backbones()
    known = {name: backbone_class(name).module_groups for name in names}
    unknown = [g for g in groups if not any(g in k for k in known.values())]
    if unknown or not groups:
        listing = "; ".join(f"{name}: {list(k)}" for name, k in known.items())
        raise ValueError(
            f"trainable_modules={list(groups)} contains unknown groups {unknown} or is empty; use a non-empty subset "
            f"of the backbone's groups ({listing})."
        )


def infer_backbone(path: str | Path) -> str:
    """The backbone of a checkpoint folder, read from its config.json (`model_type`, `_class_name`, `architectures`)."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise ValueError(
            f"{config_file} not found: {path} is not a checkpoint folder; pass the folder that holds "
            "config.json and the weights."
        )
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file}: not valid JSON ({err}); the checkpoint is damaged.") from err
    candidates = [_MODEL_TYPES.get(config.get("model_type")), _CLASS_NAMES.get(config.get("_class_name"))]
    candidates += [_CLASS_NAMES.get(arch) for arch in config.get("architectures") or []]
    found = {c for c in candidates if c is not None}
    if len(found) != 1:
        raise ValueError(
            f"{config_file}: cannot tell the backbone (model_type={config.get('model_type')!r}, _class_name="
            f"{config.get('_class_name')!r}); pass --backbone with one of {sorted(BACKBONES)}."
        )
    return found.pop()


def load_backbone(
    path: str | Path,
    backbone: str | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
) -> tuple[Backbone, torch.nn.Module]:
    """(backbone, model) from a local checkpoint folder; `backbone` None infers it from the folder's config."""
    name = backbone or infer_backbone(path)
    return backbone_class(name).load(path, dtype=dtype, device=device)
