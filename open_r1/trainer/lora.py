"""LoRA for PairGRPO: adapters injected in place into Janus-Pro's language model, merged into full weights on save.

peft's `inject_adapter_in_model` keeps every attribute path (`model.model.language_model`, `model.lm_head`, ...), so
the janus rollout and log-prob functions run unchanged; no `PeftModel` wrapper means TRL's own PEFT branches stay off.
Deliberately plain LoRA on linear layers only (no DoRA, no per-layer rank/alpha patterns): the merge on save is then
`W + scaling * B @ A`, the same as peft's `merge_and_unload`.
"""

import logging
import re
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file
from trl import ModelConfig, get_peft_config

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"
ADAPTER_FILE = "adapter_model.safetensors"  # peft's file name, next to its adapter_config.json
# The language model's attention and MLP projections only: never the vision tower, the VQ model or the image head.
DEFAULT_LORA_TARGET = r"model\.language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
LORA_A, LORA_B, BASE = f".lora_A.{ADAPTER_NAME}.weight", f".lora_B.{ADAPTER_NAME}.weight", ".base_layer.weight"


def build_lora_config(model_args: ModelConfig) -> LoraConfig | None:
    """TRL's `get_peft_config(model_args)` (None without `--use_peft`), with PairUni's default targets."""
    config = get_peft_config(model_args)
    if config is None:
        return None
    if not model_args.lora_target_modules:
        config.target_modules = DEFAULT_LORA_TARGET
    elif isinstance(config.target_modules, str) and re.fullmatch(r"\w+", config.target_modules):
        # TRL turns a one-name list into a plain string, which peft reads as a regex over the FULL module name
        # (matching nothing); a bare name is meant as a suffix, like the names of a list.
        config.target_modules = [config.target_modules]
    validate_lora_config(config)
    return config


def validate_lora_config(config: LoraConfig) -> None:
    """Reject options the save-time merge (`merge_lora_state_dict`) would get wrong."""
    if config.use_dora:
        raise ValueError("use_dora=True is not supported by PairGRPO's LoRA merge on save; set use_dora: false.")
    if config.rank_pattern or config.alpha_pattern:
        raise ValueError(
            "LoRA rank_pattern/alpha_pattern are not supported (one scaling for all layers); remove them."
        )
    if config.modules_to_save:
        raise ValueError(
            f"lora_modules_to_save={config.modules_to_save} is not supported with PairGRPO; leave it unset "
            "(or train those modules fully with trainable_modules and use_peft: false)."
        )


def lora_scaling(config: LoraConfig) -> float:
    """peft's LoRA scaling: lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA."""
    return config.lora_alpha / (config.r**0.5 if config.use_rslora else config.r)


def apply_lora(model: torch.nn.Module, config: LoraConfig) -> tuple[int, int]:
    """Inject LoRA adapters in place; only adapter weights train. Returns (trainable, frozen) parameter counts.

    Must run before the optimizer is built (the HF Trainer optimises parameters that require grad) and before
    DeepSpeed wraps the model.
    """
    validate_lora_config(config)
    inject_adapter_in_model(config, model, adapter_name=ADAPTER_NAME)
    trainable = frozen = 0
    for name, param in model.named_parameters():
        keep = ".lora_" in name
        param.requires_grad_(keep)
        trainable += param.numel() if keep else 0
        frozen += 0 if keep else param.numel()
    if trainable == 0:
        raise ValueError(f"lora_target_modules={config.target_modules} matched no layer of {type(model).__name__}.")
    logger.info(
        "LoRA (r=%d, alpha=%s): trainable parameters %d; frozen %d.", config.r, config.lora_alpha, trainable, frozen
    )
    return trainable, frozen


def has_lora(model: torch.nn.Module) -> bool:
    return any(isinstance(module, BaseTunerLayer) for module in model.modules())


@contextmanager
def adapters_disabled(model: torch.nn.Module):
    """Run `model` as its base weights (the KL reference with LoRA: no second copy of the model in memory)."""
    layers = [module for module in model.modules() if isinstance(module, BaseTunerLayer)]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield model
    finally:
        for layer in layers:
            layer.enable_adapters(True)  # also restores requires_grad of the active adapter weights


def merge_lora_state_dict(state_dict: dict[str, torch.Tensor], scaling: float) -> dict[str, torch.Tensor]:
    """A plain state dict with LoRA merged: `<m>.weight = <m>.base_layer.weight + scaling * B @ A` (peft's merge).

    Accepts the model's own or a ZeRO-3 gathered state dict; the input is not modified. Keys of injected layers
    (`<m>.base_layer.*`, `<m>.lora_A.default.weight`, `<m>.lora_B.default.weight`) become `<m>.weight`/`<m>.bias`,
    so the result loads into the un-adapted model.
    """
    merged = {}
    for key, value in state_dict.items():
        if ".lora_A." in key or ".lora_B." in key:
            continue
        if key.endswith(BASE):
            module = key[: -len(BASE)]
            lora_a, lora_b = state_dict[module + LORA_A], state_dict[module + LORA_B]  # [r, in], [out, r]
            delta = (lora_b.float() @ lora_a.float()) * scaling  # [out, in]
            merged[module + ".weight"] = (value.float() + delta).to(value.dtype)
        else:
            merged[key.replace(".base_layer.", ".")] = value
    return merged


def adapter_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The adapter weights alone, keyed as `PeftModel.save_pretrained` writes them (loads with `PeftModel`)."""
    return {
        "base_model.model." + key.replace(f".{ADAPTER_NAME}.", "."): value
        for key, value in state_dict.items()
        if ".lora_A." in key or ".lora_B." in key
    }


def load_adapter(model: torch.nn.Module, folder: str | Path) -> None:
    """Load `adapter_model.safetensors` (written by `adapter_state_dict`) into a model with LoRA injected."""
    saved = load_file(str(Path(folder) / ADAPTER_FILE))
    prefix = "base_model.model."
    state = {
        key[len(prefix) :]
        .replace(".lora_A.", f".lora_A.{ADAPTER_NAME}.")
        .replace(".lora_B.", f".lora_B.{ADAPTER_NAME}."): v
        for key, v in saved.items()
    }
    missing = {key for key, _ in model.named_parameters() if ".lora_" in key} - state.keys()
    if missing:
        raise ValueError(f"{folder}/{ADAPTER_FILE} lacks adapter weights {sorted(missing)[:3]}; is it this run's?")
    model.load_state_dict(state, strict=False)


__all__ = [
    "DEFAULT_LORA_TARGET",
    "adapter_state_dict",
    "adapters_disabled",
    "apply_lora",
    "build_lora_config",
    "has_lora",
    "load_adapter",
    "lora_scaling",
    "merge_lora_state_dict",
]
