"""Load Janus-Pro checkpoints in either format into transformers' `JanusForConditionalGeneration`; save and export.

Formats:
- original DeepSeek (`model_type: multi_modality`, e.g. deepseek-ai/Janus-Pro-1B): converted in memory;
- transformers (`model_type: janus`): loaded directly.
Weights are loaded with strict key and shape checks; nothing is ever downloaded.

Config semantics follow the original code: the vision tower is the `model_name` SigLIP preset at `image_size`, with
as many blocks as `select_layer` says (deepseek-ai/Janus janus/models/siglip_vit.py `create_siglip_vit`: `<= 0` keeps
`layers + select_layer + 1` blocks, `> 0` keeps `select_layer` blocks; CLIPVisionTower's default is -2), and the
VQ model is always VQ-16 (the original builds it without arguments).
Extension of the original config (documented, IGNORED by the original DeepSeek code, used by tiny test
checkpoints): `vision_config.params` may override the siglip preset with `width`, `heads`, `patch_size`,
`mlp_ratio` (older exports also wrote `layers`, read as the preset depth); `gen_vision_config.params` may override
the VQ-16 defaults with `ch`, `ch_mult`, `z_channels`, `num_res_blocks`, `codebook_size`, `codebook_embed_dim`.
`export_original` warns when a model needs these keys, since the original code would misread such a folder.

Non-runtime tensors of the original format: `vision_model.vision_tower.attn_pool.*` (a SigLIP pooling head the
original code never calls) and `gen_vision_model.quantize.codebook_used` (a training-time usage counter) have no
place in transformers' Janus. They are kept on the loaded model as `model.janus_original_extras` (in memory only)
so an in-process original -> ours -> original round trip is complete; without them, `export_original` writes
`codebook_used` as zeros and omits `attn_pool` (the original loader then leaves it at its random init, unused).
"""

import copy
import json
import logging
import os
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import (
    GenerationConfig,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusVisionConfig,
    JanusVQVAEConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
)

from janus.processor import (
    BOI_TOKEN,
    BOS_TOKEN,
    EOI_TOKEN,
    EOS_TOKEN,
    IMAGE_TOKEN,
    PAD_TOKEN,
    JanusProcessor,
    SpecialTokens,
    write_original_tokenizer_files,
    write_processor_files,
)

logger = logging.getLogger(__name__)

ORIGINAL_MODEL_TYPE = "multi_modality"
TRANSFORMERS_MODEL_TYPE = "janus"

# Presets of the original code (janus/models/siglip_vit.py SigLIP_MODEL_CONFIG, vq_model.py VQ_16 + Encoder/Decoder).
SIGLIP_PRESETS = {
    "siglip_large_patch16_384": {
        "image_size": 384,
        "patch_size": 16,
        "width": 1024,
        "layers": 24,
        "heads": 16,
        "mlp_ratio": 4,
    },
    "siglip_so400m_patch14_384": {
        "image_size": 336,
        "patch_size": 14,
        "width": 1152,
        "layers": 27,
        "heads": 16,
        "mlp_ratio": 3.7362,
    },
}
VQ16_DEFAULTS = {
    "ch": 128,
    "ch_mult": [1, 1, 2, 2, 4],
    "z_channels": 256,
    "num_res_blocks": 2,
    "codebook_size": 16384,
    "codebook_embed_dim": 8,
}
DEFAULT_SELECT_LAYER = -2  # CLIPVisionTower's default when vision_config.params omits select_layer
VISION_EXTENSION_KEYS = ("width", "heads", "patch_size", "mlp_ratio")
CODEBOOK_USED_SIZE = 65536  # fixed size of the original VectorQuantizer usage buffer
VISION_PREFIX = "vision_model.vision_tower."
_EXTRA_PATTERNS = (re.compile(r"^vision_model\.vision_tower\.attn_pool\."), re.compile(r"\.quantize\.codebook_used$"))
# Older transformers saved rotary caches; they are recomputed at runtime.
_DROPPED_PATTERNS = (re.compile(r"\.rotary_emb\.inv_freq$"),)

_JANUS_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, BOI_TOKEN, EOI_TOKEN, IMAGE_TOKEN)
WEIGHT_FILES = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)


# ----------------------------------------------------------------------------------------------------------------
# Key mapping between the original and the transformers layout.
# ----------------------------------------------------------------------------------------------------------------


def _key_rules() -> list[tuple[str, str]]:
    """(original, transformers) key templates; `{i}`/`{j}` are indices, `{rest}` the parameter suffix."""
    v, vq = VISION_PREFIX, "gen_vision_model."
    rules = [
        ("language_model.model.{rest}", "model.language_model.{rest}"),
        ("language_model.lm_head.{rest}", "lm_head.{rest}"),
        (v + "patch_embed.proj.{rest}", "model.vision_model.embeddings.patch_embedding.{rest}"),
        (v + "blocks.{i}.norm1.{rest}", "model.vision_model.encoder.layers.{i}.layer_norm1.{rest}"),
        (v + "blocks.{i}.norm2.{rest}", "model.vision_model.encoder.layers.{i}.layer_norm2.{rest}"),
        (v + "blocks.{i}.attn.proj.{rest}", "model.vision_model.encoder.layers.{i}.self_attn.projection_layer.{rest}"),
        (v + "blocks.{i}.mlp.{rest}", "model.vision_model.encoder.layers.{i}.mlp.{rest}"),
        (v + "norm.{rest}", "model.vision_model.post_layernorm.{rest}"),
        ("gen_head.output_mlp_projector.{rest}", "model.generation_head.proj_out.{rest}"),
        ("gen_head.vision_head.{rest}", "model.generation_head.vision_head.{rest}"),
        ("gen_embed.{rest}", "model.generation_embeddings.{rest}"),
        (vq + "quantize.embedding.{rest}", "model.vqmodel.quantize.embedding.{rest}"),
        (vq + "quant_conv.{rest}", "model.vqmodel.quant_conv.{rest}"),
        (vq + "post_quant_conv.{rest}", "model.vqmodel.post_quant_conv.{rest}"),
    ]
    for part in ("encoder", "decoder"):
        hf = f"model.vqmodel.{part}."
        rules += [
            (f"{vq}{part}.conv_in.{{rest}}", hf + "conv_in.{rest}"),
            (f"{vq}{part}.norm_out.{{rest}}", hf + "norm_out.{rest}"),
            (f"{vq}{part}.conv_out.{{rest}}", hf + "conv_out.{rest}"),
            (f"{vq}{part}.mid.0.{{rest}}", hf + "mid.block_1.{rest}"),
            (f"{vq}{part}.mid.1.{{rest}}", hf + "mid.attn_1.{rest}"),
            (f"{vq}{part}.mid.2.{{rest}}", hf + "mid.block_2.{rest}"),
        ]
        # Both layouts append levels in the same order (decoder: lowest resolution first), so N maps to N.
        level = "down" if part == "encoder" else "up"
        rules += [
            (f"{vq}{part}.conv_blocks.{{i}}.res.{{j}}.{{rest}}", f"{hf}{level}.{{i}}.block.{{j}}.{{rest}}"),
            (f"{vq}{part}.conv_blocks.{{i}}.attn.{{j}}.{{rest}}", f"{hf}{level}.{{i}}.attn.{{j}}.{{rest}}"),
            (f"{vq}{part}.conv_blocks.{{i}}.downsample.{{rest}}", f"{hf}{level}.{{i}}.downsample.{{rest}}"),
            (f"{vq}{part}.conv_blocks.{{i}}.upsample.{{rest}}", f"{hf}{level}.{{i}}.upsample.{{rest}}"),
        ]
    # MlpProjector is Sequential(Linear, GELU, Linear, ...): Linear k sits at index 2k.
    for orig, hf in (("aligner.", "model.aligner."), ("gen_aligner.", "model.generation_aligner.")):
        rules.append((orig + "layers.0.{rest}", hf + "fc1.{rest}"))
        rules += [(f"{orig}layers.{2 * k}.{{rest}}", f"{hf}hidden_layers.{k - 1}.{{rest}}") for k in range(1, 8)]
    return rules


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{j\}", r"(?P<j>\d+)")
    return re.compile("^" + pattern.replace(r"\{rest\}", r"(?P<rest>.+)") + "$")


_RULES = [(_compile(orig), orig, _compile(hf), hf) for orig, hf in _key_rules()]


def _rename(key: str, to_hf: bool) -> str | None:
    for orig_re, orig_t, hf_re, hf_t in _RULES:
        match = (orig_re if to_hf else hf_re).match(key)
        if match:
            return (hf_t if to_hf else orig_t).format(**match.groupdict())
    return None


def original_to_transformers_state_dict(
    state_dict: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Rename/split original keys; returns (transformers state dict, non-runtime extras). Unknown keys raise."""
    converted, extras, unknown = {}, {}, []
    for key, tensor in state_dict.items():
        if any(p.search(key) for p in _EXTRA_PATTERNS):
            extras[key] = tensor
        elif any(p.search(key) for p in _DROPPED_PATTERNS):
            continue
        elif key == VISION_PREFIX + "pos_embed":
            # [1, P, D] -> [P, D]; clone so the parameter owns its storage.
            converted["model.vision_model.embeddings.position_embedding.weight"] = tensor[0].clone()
        elif (m := re.match(re.escape(VISION_PREFIX) + r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", key)) is not None:
            # timm fuses q, k, v along the output dim in this order ([3D, D]).
            for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
                # clone: each parameter owns its storage (no views into the fused tensor).
                converted[f"model.vision_model.encoder.layers.{m[1]}.self_attn.{name}.{m[2]}"] = part.clone()
        elif (new_key := _rename(key, to_hf=True)) is not None:
            converted[new_key] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"Unexpected keys in the original Janus checkpoint (not part of Janus-Pro): {unknown[:10]}")
    return converted, extras


def transformers_to_original_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of `original_to_transformers_state_dict` for the runtime weights (fuses q/k/v back)."""
    out, unknown = {}, []
    qkv_re = re.compile(r"^model\.vision_model\.encoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.(weight|bias)$")
    for key, tensor in state_dict.items():
        if key == "model.vision_model.embeddings.position_embedding.weight":
            out[VISION_PREFIX + "pos_embed"] = tensor.unsqueeze(0)
        elif (m := qkv_re.match(key)) is not None:
            if m[2] == "q":
                parts = [state_dict[key.replace(".q_proj.", f".{n}_proj.")] for n in "qkv"]
                out[f"{VISION_PREFIX}blocks.{m[1]}.attn.qkv.{m[3]}"] = torch.cat(parts, dim=0)
        elif (new_key := _rename(key, to_hf=False)) is not None:
            out[new_key] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"Cannot map transformers Janus keys to the original layout: {unknown[:10]}")
    return out


# ----------------------------------------------------------------------------------------------------------------
# Config conversion.
# ----------------------------------------------------------------------------------------------------------------


def _params(config: dict, name: str) -> dict:
    if name not in config or "params" not in config[name]:
        raise ValueError(f"config.json: `{name}.params` is missing; an original Janus config needs all sub-configs.")
    return dict(config[name]["params"])


def _mlp_params(config: dict, name: str) -> dict:
    params = _params(config, name)
    if params.get("projector_type", "mlp_gelu") != "mlp_gelu":
        raise ValueError(
            f"config.json: {name}.params.projector_type={params['projector_type']!r}; Janus-Pro uses 'mlp_gelu'."
        )
    return params


def _vision_params(config: dict, state_dict: dict[str, torch.Tensor]) -> dict:
    params = _params(config, "vision_config")
    model_name = params.get("model_name", "siglip_large_patch16_384")
    if model_name not in SIGLIP_PRESETS:
        raise ValueError(
            f"config.json: vision_config.params.model_name={model_name!r} is not supported; "
            f"use one of {sorted(SIGLIP_PRESETS)} (or override width/layers/heads/patch_size/mlp_ratio in params)."
        )
    merged = {**SIGLIP_PRESETS[model_name], **{k: v for k, v in params.items() if k in SIGLIP_PRESETS[model_name]}}
    merged["layers"] = built_vision_blocks(merged["layers"], int(params.get("select_layer", DEFAULT_SELECT_LAYER)))
    stored = {int(k.split(".")[3]) for k in state_dict if k.startswith(VISION_PREFIX + "blocks.")}
    if stored and len(stored) < merged["layers"]:
        raise ValueError(
            f"config.json: vision_config.params.select_layer={params.get('select_layer', DEFAULT_SELECT_LAYER)} "
            f"builds {merged['layers']} vision blocks but the weights hold only {len(stored)}; set select_layer to "
            f"{len(stored)} (the number of stored blocks)."
        )
    return merged


def built_vision_blocks(preset_layers: int, select_layer: int) -> int:
    """Blocks the original `create_siglip_vit` builds for `select_layer` (<= 0: counted from the end; > 0: first N)."""
    if select_layer <= 0:
        return min(preset_layers, preset_layers + select_layer + 1)
    return min(preset_layers, select_layer)


def _drop_unbuilt_vision_blocks(state_dict: dict[str, torch.Tensor], blocks: int) -> dict[str, torch.Tensor]:
    """The original code ignores stored blocks past `select_layer` (HF from_pretrained drops unexpected keys)."""
    pattern = re.compile(re.escape(VISION_PREFIX) + r"blocks\.(\d+)\.")
    unused = {k for k in state_dict if (m := pattern.match(k)) is not None and int(m[1]) >= blocks}
    if unused:
        logger.warning(
            "Ignoring %d stored vision tensors of blocks >= %d: select_layer builds %d blocks, as in the original code.",
            len(unused),
            blocks,
            blocks,
        )
    return {k: v for k, v in state_dict.items() if k not in unused}


def _vq_params(config: dict) -> dict:
    params = _params(config, "gen_vision_config")
    if config["gen_vision_config"].get("cls", "VQ-16") != "VQ-16":
        raise ValueError(f"config.json: gen_vision_config.cls={config['gen_vision_config']['cls']!r}; only VQ-16.")
    merged = {**VQ16_DEFAULTS, **{k: v for k, v in params.items() if k in VQ16_DEFAULTS}}
    return merged | {
        k: params.get(k, merged[d])
        for k, d in (("image_token_size", "codebook_size"), ("n_embed", "codebook_embed_dim"))
    }


def _vision_config(vision: dict, aligner: dict) -> JanusVisionConfig:
    grid = vision["image_size"] // vision["patch_size"]
    return JanusVisionConfig(
        hidden_size=vision["width"],
        num_hidden_layers=vision["layers"],
        num_attention_heads=vision["heads"],
        image_size=vision["image_size"],
        patch_size=vision["patch_size"],
        mlp_ratio=float(vision["mlp_ratio"]),
        hidden_act="gelu",  # exact GELU, as timm's default
        layer_norm_eps=1e-6,
        projection_dim=aligner["n_embed"],
        depth=aligner["depth"],
        num_image_tokens=grid * grid,
    )


def _vq_config(vq: dict, gen_aligner: dict, gen_head: dict) -> JanusVQVAEConfig:
    if gen_head["image_token_embed"] != gen_aligner["n_embed"]:
        raise ValueError(
            "config.json: gen_head.params.image_token_embed must equal gen_aligner.params.n_embed "
            f"({gen_head['image_token_embed']} != {gen_aligner['n_embed']}); transformers' Janus shares one width."
        )
    if vq["image_token_size"] != vq["codebook_size"] or vq["n_embed"] != vq["codebook_embed_dim"]:
        raise ValueError(
            "config.json: gen_vision_config.params image_token_size/n_embed "
            f"({vq['image_token_size']}/{vq['n_embed']}) must equal the VQ codebook size/dim "
            f"({vq['codebook_size']}/{vq['codebook_embed_dim']}); set codebook_size/codebook_embed_dim to match."
        )
    return JanusVQVAEConfig(
        embed_dim=vq["codebook_embed_dim"],
        num_embeddings=vq["codebook_size"],
        latent_channels=vq["z_channels"],
        base_channels=vq["ch"],
        channel_multiplier=list(vq["ch_mult"]),
        num_res_blocks=vq["num_res_blocks"],
        projection_dim=gen_aligner["n_embed"],
        num_hidden_layers=gen_aligner["depth"],
        image_token_embed_dim=gen_head["n_embed"],
        hidden_act="gelu",
    )


def config_from_original(config: dict, state_dict: dict[str, torch.Tensor], image_token_id: int) -> JanusConfig:
    """Build a transformers `JanusConfig` from an original `multi_modality` config dict and its weights.

    `image_token_id` must come from the tokenizer (`<image_placeholder>`); it differs between checkpoints.
    """
    language = {k: v for k, v in config.get("language_config", {}).items() if k not in ("model_type", "torch_dtype")}
    embed = state_dict.get("language_model.model.embed_tokens.weight")
    if embed is not None:
        language["vocab_size"], language["hidden_size"] = embed.shape
    return JanusConfig(
        # Janus-Pro's lm_head is its own matrix (JanusConfig would tie it by default).
        text_config=LlamaConfig(**{**language, "tie_word_embeddings": False}),
        vision_config=_vision_config(_vision_params(config, state_dict), _mlp_params(config, "aligner_config")),
        vq_config=_vq_config(
            _vq_params(config), _mlp_params(config, "gen_aligner_config"), _params(config, "gen_head_config")
        ),
        image_token_id=image_token_id,
        tie_word_embeddings=False,
    )


def _language_to_original(text: LlamaConfig, dtype_name: str) -> dict:
    return {
        "model_type": "llama",
        "hidden_size": text.hidden_size,
        "intermediate_size": text.intermediate_size,
        "num_hidden_layers": text.num_hidden_layers,
        "num_attention_heads": text.num_attention_heads,
        "num_key_value_heads": text.num_key_value_heads,
        "max_position_embeddings": text.max_position_embeddings,
        "rms_norm_eps": text.rms_norm_eps,
        "rope_theta": text.rope_parameters["rope_theta"],
        "vocab_size": text.vocab_size,
        "torch_dtype": dtype_name,
    }


def _vision_to_original(vision: JanusVisionConfig) -> dict:
    """The original code's own depth setting (`select_layer`) plus extension keys, with a warning, where needed."""
    ours = {
        "width": vision.hidden_size,
        "heads": vision.num_attention_heads,
        "patch_size": vision.patch_size,
        "mlp_ratio": vision.mlp_ratio,
    }
    name = next(
        (n for n, p in SIGLIP_PRESETS.items() if all(p[k] == ours[k] for k in VISION_EXTENSION_KEYS)),
        "siglip_large_patch16_384",
    )
    preset = SIGLIP_PRESETS[name]
    blocks = vision.num_hidden_layers
    # -1 = every block of the preset; N > 0 = the first N blocks (create_siglip_vit).
    params = {"image_size": vision.image_size, "model_name": name, "select_feature": "same"}
    params["select_layer"] = -1 if blocks == preset["layers"] else blocks
    extension = {k: v for k, v in ours.items() if v != preset[k]}
    if blocks > preset["layers"]:
        extension["layers"] = blocks
    if extension:
        logger.warning(
            "export_original: vision tower %s differs from every SigLIP preset of the original code; writing "
            "extension keys %s that the original DeepSeek code IGNORES (it would build %s). Only janus.load_pretrained "
            "reads this folder faithfully.",
            ours | {"layers": blocks},
            sorted(extension),
            name,
        )
    return params | extension


def _vq_to_original(vq: JanusVQVAEConfig) -> dict:
    """VQ-16 is implicit in the original format (built without arguments); other VQ layouts get extension keys."""
    ours = {
        "ch": vq.base_channels,
        "ch_mult": list(vq.channel_multiplier),
        "z_channels": vq.latent_channels,
        "num_res_blocks": vq.num_res_blocks,
        "codebook_size": vq.num_embeddings,
        "codebook_embed_dim": vq.embed_dim,
    }
    params = {"image_token_size": vq.num_embeddings, "n_embed": vq.embed_dim}
    extension = {k: v for k, v in ours.items() if v != VQ16_DEFAULTS[k]}
    if extension:
        logger.warning(
            "export_original: the VQ model %s is not VQ-16; the original DeepSeek code always builds VQ-16 and "
            "IGNORES the extension keys %s written to gen_vision_config.params (image generation and decoding "
            "would break there). Only janus.load_pretrained reads this folder faithfully.",
            ours,
            sorted(extension),
        )
    return params | extension


def config_to_original(config: JanusConfig, dtype: torch.dtype) -> dict:
    """The original `multi_modality` config dict for `config` (extension keys only where presets differ)."""
    text, vision, vq = config.text_config, config.vision_config, config.vq_config
    dtype_name = str(dtype).removeprefix("torch.")
    aligner = {"depth": vision.depth, "input_dim": vision.hidden_size, "n_embed": vision.projection_dim}
    gen_aligner = {"depth": vq.num_hidden_layers, "input_dim": vq.embed_dim, "n_embed": vq.projection_dim}
    gen_head = {
        "image_token_embed": vq.projection_dim,
        "image_token_size": vq.num_embeddings,
        "n_embed": vq.image_token_embed_dim,
    }
    return {
        "architectures": ["MultiModalityCausalLM"],
        "model_type": ORIGINAL_MODEL_TYPE,
        "torch_dtype": dtype_name,
        "language_config": _language_to_original(text, dtype_name),
        "vision_config": {"cls": "CLIPVisionTower", "model_type": "vision", "params": _vision_to_original(vision)},
        "aligner_config": {
            "cls": "MlpProjector",
            "model_type": "aligner",
            "params": aligner | {"projector_type": "mlp_gelu"},
        },
        "gen_vision_config": {"cls": "VQ-16", "model_type": "gen_vision", "params": _vq_to_original(vq)},
        "gen_aligner_config": {
            "cls": "MlpProjector",
            "model_type": "gen_aligner",
            "params": gen_aligner | {"projector_type": "mlp_gelu"},
        },
        "gen_head_config": {"cls": "vision_head", "model_type": "gen_head", "params": gen_head},
    }


# ----------------------------------------------------------------------------------------------------------------
# Files.
# ----------------------------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; a Janus checkpoint folder needs {path.name}.")
    return json.loads(path.read_text(encoding="utf-8"))


class CorruptCheckpointError(ValueError):
    """A checkpoint file that cannot be read (truncated download or interrupted save)."""


def _corrupt(path: Path, reason: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"{path}: {reason}. The file is truncated or corrupt (interrupted download, copy or save): download or copy "
        "it again, or re-save/re-export the checkpoint (a training checkpoint-N can be skipped by resuming from an "
        "earlier one)."
    )


def _load_weight_file(path: Path) -> dict[str, torch.Tensor]:
    check_weight_file(path)
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        try:  # mmap avoids a second copy of multi-GB files; legacy (non-zip) pickles cannot be mapped
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:
            return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise _corrupt(path, f"cannot be read ({type(error).__name__}: {error})") from error


def check_weight_file(path: Path) -> None:
    """Cheap structural check without reading the tensors: the safetensors header's data fits in the file, or the
    torch zip archive's central directory (written last) is present. Raises `CorruptCheckpointError`."""
    size = path.stat().st_size
    if path.suffix == ".safetensors":
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise _corrupt(path, f"only {size} bytes, shorter than a safetensors header")
            header_len = int.from_bytes(head, "little")
            if header_len > size - 8:
                raise _corrupt(path, f"header claims {header_len} bytes but the file has {size}")
            try:
                header = json.loads(handle.read(header_len))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise _corrupt(path, f"unreadable safetensors header ({error})") from error
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + header_len + end > size:
            raise _corrupt(path, f"tensors end at byte {8 + header_len + end} but the file has only {size} bytes")
    elif size == 0 or (_looks_like_zip(path) and not zipfile.is_zipfile(path)):
        raise _corrupt(path, f"incomplete archive ({size} bytes, no zip central directory)")


def _looks_like_zip(path: Path) -> bool:
    """torch.save writes zip archives (magic PK); a zip whose end record is missing was cut short."""
    with path.open("rb") as handle:
        return handle.read(2) == b"PK"


def verify_checkpoint_files(folder: str | Path, include_zero: bool = True) -> list[Path]:
    """Check every weight file of a checkpoint folder before loading it: the model weights (single file or all
    shards of an index) and, with `include_zero`, DeepSpeed's `global_step*/*.pt` shards (what a resume reads).
    Returns the checked files; raises `CorruptCheckpointError` / `FileNotFoundError` naming the first bad file and
    the fix. Reads headers and zip directories only (seconds even for 7B checkpoints)."""
    folder = Path(folder)
    checked = []
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if name.endswith(".index.json"):
            shards = sorted(set(_read_json(path)["weight_map"].values()))
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise FileNotFoundError(f"{folder / missing[0]} (listed in {path}) not found; re-download the shard.")
            checked += [folder / s for s in shards]
        else:
            checked.append(path)
        break  # read_state_dict uses the first format present
    if include_zero:
        checked += sorted(folder.glob("global_step*/*.pt"))
    for path in checked:
        check_weight_file(path)
    return checked


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Read all weights of `folder` (single file or shards + index; safetensors preferred over .bin)."""
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return _load_weight_file(path)
        shards = sorted(set(_read_json(path)["weight_map"].values()))
        state_dict = {}
        for shard in shards:
            if not (folder / shard).is_file():
                raise FileNotFoundError(f"{folder / shard} (listed in {path.name}) not found; re-download the shard.")
            state_dict.update(_load_weight_file(folder / shard))
        return state_dict
    raise FileNotFoundError(f"No weights in {folder}: expected one of {', '.join(WEIGHT_FILES)}.")


def load_tokenizer(folder: str | Path) -> PreTrainedTokenizerFast:
    """Load `tokenizer.json` as-is (a class-specific tokenizer may rebuild it from vocab/merges in transformers 5).

    Every special token named in special_tokens_map.json / tokenizer_config.json must already be in tokenizer.json:
    otherwise it would be appended as a new token and the ids of the Janus tokens after it would shift.
    """
    folder = Path(folder)
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; the Janus checkpoint folder needs its tokenizer.json.")
    special = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (folder / name).is_file():
            for key, value in _read_json(folder / name).items():
                if key in ("bos_token", "eos_token", "pad_token", "unk_token") and value is not None:
                    special.setdefault(key, value["content"] if isinstance(value, dict) else value)
    stored = _stored_token_ids(path)
    absent = {key: token for key, token in special.items() if token not in stored}
    if absent:
        raise ValueError(
            f"{path} lacks the special token(s) {absent} named in special_tokens_map.json/tokenizer_config.json; "
            "loading would add them as new tokens and shift the ids the model was trained with. Use the "
            "checkpoint's original tokenizer.json (or remove the entries from the special-tokens files)."
        )
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path), **special)
    vocab = tokenizer.get_vocab()
    shifted = {t: (i, vocab.get(t)) for t, i in stored.items() if t in _JANUS_TOKENS and vocab.get(t) != i}
    if shifted:
        raise ValueError(f"{path}: special token ids changed on loading (file id, loaded id): {shifted}.")
    return tokenizer


def _stored_token_ids(path: Path) -> dict[str, int]:
    """Token -> id as written in tokenizer.json (model vocab plus added tokens)."""
    raw = _read_json(path)
    vocab = (raw.get("model") or {}).get("vocab")
    ids = dict(vocab) if isinstance(vocab, dict) else {}  # BPE/WordPiece: dict; Unigram: list of pairs
    return ids | {t["content"]: t["id"] for t in raw.get("added_tokens", [])}


def _check_special_ids(config_dict: dict, special: SpecialTokens, source: Path) -> None:
    """Ids recorded in a transformers-format config.json must match the tokenizer (a swapped tokenizer shifts them)."""
    text = config_dict.get("text_config", {}) or {}
    # bos/eos are not compared: Llama's defaults (1/2) may be stored by conversions that never set them.
    recorded = {
        "image_token_id": (config_dict.get("image_token_id"), special.image_id),
        "pad_token_id": (text.get("pad_token_id", config_dict.get("pad_token_id")), special.pad_id),
    }
    wrong = {k: v for k, v in recorded.items() if v[0] is not None and v[0] != v[1]}
    if wrong:
        raise ValueError(
            f"{source / 'config.json'} and {source / 'tokenizer.json'} disagree on special token ids "
            f"(config, tokenizer): {wrong}; the tokenizer does not belong to these weights: restore the "
            "checkpoint's own tokenizer.json."
        )


# ----------------------------------------------------------------------------------------------------------------
# Model construction and the public API.
# ----------------------------------------------------------------------------------------------------------------


def _check_keys(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [
        f"{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            f"Weights in {source} do not match the model built from its config.json: "
            f"missing={missing[:10]} ({len(missing)}), unexpected={unexpected[:10]} ({len(unexpected)}), "
            f"shape mismatches (checkpoint vs model)={wrong[:10]}. Check config.json against the weights."
        )


def _build_model(
    config: JanusConfig, state_dict: dict[str, torch.Tensor], dtype: torch.dtype | None, source: Path
) -> JanusForConditionalGeneration:
    from accelerate import init_empty_weights

    if dtype is not None:
        state_dict = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    # Parameters on the meta device skip a full random init (minutes for 7B); buffers stay real.
    with init_empty_weights(include_buffers=False):
        model = JanusForConditionalGeneration(config)
    _check_keys(model, state_dict, source)
    model.load_state_dict(state_dict, strict=True, assign=True)
    floating = [v.dtype for v in state_dict.values() if v.is_floating_point()]
    model.config.dtype = dtype or (floating[0] if floating else torch.float32)
    return model


def _set_generation_ids(model: JanusForConditionalGeneration, special: SpecialTokens) -> None:
    model.generation_config.bos_token_id = special.bos_id
    model.generation_config.eos_token_id = special.eos_id
    model.generation_config.pad_token_id = special.pad_id
    for cfg in (model.config, model.config.text_config):
        cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = special.bos_id, special.eos_id, special.pad_id


DTYPE_NAMES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
}


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """A torch dtype, one of DTYPE_NAMES ("bf16", "float16", ...), or None / "auto" (keep the stored dtype)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower().removeprefix("torch.")
    if name == "auto":
        return None
    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype={dtype!r} is not supported; use a torch.dtype, 'auto' or one of {list(DTYPE_NAMES)}.")
    return DTYPE_NAMES[name]


def load_pretrained(
    path: str | Path, dtype: torch.dtype | str | None = None, device: str | torch.device | None = None
) -> tuple[JanusForConditionalGeneration, JanusProcessor]:
    """Load a local Janus-Pro folder (original `multi_modality` or transformers `janus`) -> (model in eval, processor).

    `dtype=None`/"auto" keeps the stored dtype of the weights ("bf16", "float16", ... are accepted, see
    `resolve_dtype`); `device=None` leaves the model on CPU.
    """
    dtype = resolve_dtype(dtype)
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"Checkpoint folder {folder} does not exist; pass a local Janus-Pro folder.")
    config_dict = _read_json(folder / "config.json")
    tokenizer = load_tokenizer(folder)
    special = SpecialTokens.from_tokenizer(tokenizer)
    model_type = config_dict.get("model_type")
    if model_type == TRANSFORMERS_MODEL_TYPE:
        _check_special_ids(config_dict, special, folder)
    state_dict = read_state_dict(folder)
    extras = {}
    if model_type == ORIGINAL_MODEL_TYPE:
        config = config_from_original(config_dict, state_dict, special.image_id)
        state_dict = _drop_unbuilt_vision_blocks(state_dict, config.vision_config.num_hidden_layers)
        state_dict, extras = original_to_transformers_state_dict(state_dict)
    elif model_type == TRANSFORMERS_MODEL_TYPE:
        config = JanusConfig.from_dict(config_dict)
        config.image_token_id = special.image_id
        if "lm_head.weight" in state_dict:
            # Janus-Pro's head is untied; conversions without `tie_word_embeddings` would default to tied, and a
            # later tie_weights() would silently replace the stored head with the input embeddings.
            config.tie_word_embeddings = config.text_config.tie_word_embeddings = False
    else:
        raise ValueError(
            f"{folder / 'config.json'}: model_type={model_type!r} is not a Janus checkpoint; expected "
            f"{ORIGINAL_MODEL_TYPE!r} (deepseek-ai/Janus-Pro-*) or {TRANSFORMERS_MODEL_TYPE!r} (transformers)."
        )
    model = _build_model(config, state_dict, dtype, folder)
    model.janus_original_extras = extras
    model.config._name_or_path = str(folder)  # trainers read it (e.g. to rebuild a reference model)
    _set_generation_ids(model, special)
    if device is not None:
        model.to(device)
    model.eval()
    processor = JanusProcessor.from_folder(folder, tokenizer, model.config)
    logger.info("Loaded %s Janus checkpoint from %s (%d parameters)", model_type, folder, model.num_parameters())
    return model, processor


def _replace_weights(out: Path, name: str, write: Callable[[Path], None]) -> None:
    """Write the weights as `out/name` so that the folder never loads older weights (issue 25): a checkpoint already
    there, in any layout (other single file, shards + index), would otherwise win or stay beside the new file.

    Order: new file to a temporary name; old index files and other single files removed (a crash from here on
    leaves a folder that refuses to load, never one that loads the old weights); rename into place; the old
    shards the removed indexes listed go last. Only files a weight index names are removed, never other files."""
    tmp = out / f".{name}.tmp"
    write(tmp)
    old_shards: set[str] = set()
    for old in WEIGHT_FILES:
        path = out / old
        if old == name or not path.is_file():
            continue
        if old.endswith(".index.json"):
            old_shards |= set(_read_json(path).get("weight_map", {}).values())
        path.unlink()
    os.replace(tmp, out / name)
    for shard in old_shards - {name}:
        (out / shard).unlink(missing_ok=True)


def save_pretrained(
    model: JanusForConditionalGeneration,
    processor: JanusProcessor,
    out_dir: str | Path,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Save a complete transformers-format folder: safetensors weights, config.json, generation_config.json (what
    `generate(..., generation_mode="image")` reads), and transformers' JanusProcessor files (tokenizer with the Janus
    special tokens, image processor, Janus-Pro chat template). Loads with `janus.load_pretrained` and with
    `transformers.AutoProcessor` / `JanusForConditionalGeneration.from_pretrained`.

    `state_dict` overrides the model's own weights, e.g. the full weights DeepSpeed ZeRO-3 gathers on save (the
    model's own parameters are shape-[0] shards there).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out)
    image_generation_config(model.generation_config, processor.special).save_pretrained(out)
    state_dict = model.state_dict() if state_dict is None else state_dict
    state_dict = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    _replace_weights(
        out, "model.safetensors", lambda path: save_file(state_dict, str(path), metadata={"format": "pt"})
    )
    processor.save_pretrained(out)
    return out


def image_generation_config(
    base: GenerationConfig, special: SpecialTokens, cfg_weight: float = 5.0
) -> GenerationConfig:
    """`base` plus what transformers' Janus image generation reads: special ids, the boi id (generation_kwargs)
    and the Janus-Pro CFG default (guidance_scale 5; the image token count comes from the vision config)."""
    config = copy.deepcopy(base)
    config.bos_token_id, config.eos_token_id, config.pad_token_id = special.bos_id, special.eos_id, special.pad_id
    config.guidance_scale = cfg_weight
    config._from_model_config = False  # else from_pretrained rebuilds it from config.json and drops generation_kwargs
    config.generation_kwargs = {**(getattr(config, "generation_kwargs", None) or {}), "boi_token_id": special.boi_id}
    return config


def export_original(
    model: JanusForConditionalGeneration,
    tokenizer: PreTrainedTokenizerFast,
    out_dir: str | Path,
    safe_serialization: bool = False,
) -> Path:
    """Write the original DeepSeek layout: config.json `multi_modality`, weights (.bin or safetensors), tokenizer."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    state_dict = transformers_to_original_state_dict(hf_state)
    extras = dict(getattr(model, "janus_original_extras", {}) or {})
    dtype = model.dtype
    extras.setdefault("gen_vision_model.quantize.codebook_used", torch.zeros(CODEBOOK_USED_SIZE, dtype=dtype))
    state_dict |= {k: v.detach().cpu() for k, v in extras.items()}
    if safe_serialization:
        contiguous = {k: v.contiguous() for k, v in state_dict.items()}
        _replace_weights(out, "model.safetensors", lambda path: save_file(contiguous, str(path)))
    else:
        _replace_weights(out, "pytorch_model.bin", lambda path: torch.save(state_dict, path))
    config = config_to_original(model.config, dtype)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    write_original_tokenizer_files(tokenizer, out)
    vision = model.config.vision_config
    write_processor_files(out, vision.image_size, vision.num_image_tokens)
    return out
