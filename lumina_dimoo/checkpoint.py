"""The original Lumina-DiMOO checkpoint layout <-> transformers' `LlamaForCausalLM` + diffusers' `VQModel`.

A Lumina-DiMOO folder is LLaDA's: `config.json` (`model_type: llada`, OLMo-style field names), safetensors weights
named `model.transformer.*` (one file or shards + index), the tokenizer files, and a `vqvae/` diffusers folder. The
LLaDA body is a Llama block stack with fully bidirectional attention, so it loads into `LlamaForCausalLM` by a key
remap and runs with a 4D bool mask (`lumina_dimoo.attention`). The VQ model is attached as the `vqvae` submodule so
the trainer sees one module. Writing goes back to the same layout, tensor for tensor; this is also the save format.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from diffusers import VQModel
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase, PreTrainedTokenizerFast
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
VQ_FOLDER = "vqvae"
VQ_WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
VQ_PREFIX = "vqvae."
DTYPE_NAMES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# (original LLaDA name, transformers Llama name) per block and for the top level (spec: Lumina-DiMOO
# `model/modeling_llada.py`, `LLaDALlamaBlock`).
_BLOCK_KEYS = {
    "attn_norm": "input_layernorm",
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "attn_out": "self_attn.o_proj",
    "ff_norm": "post_attention_layernorm",
    "ff_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "ff_out": "mlp.down_proj",
}
_TOP_KEYS = {
    "model.transformer.wte.weight": "model.embed_tokens.weight",
    "model.transformer.ln_f.weight": "model.norm.weight",
    "model.transformer.ff_out.weight": "lm_head.weight",
}
_ORIGINAL_BLOCK = re.compile(r"model\.transformer\.blocks\.(\d+)\.(\w+)\.weight")
_LLAMA_BLOCK = re.compile(r"model\.layers\.(\d+)\.([\w.]+)\.weight")

# LLaDA config values this port implements; anything else is a different architecture (the fix is in the message).
_REQUIRED = {
    "block_type": "llama",
    "layer_norm_type": "rms",
    "activation_type": "silu",
    "rope": True,
    "alibi": False,
    "weight_tying": False,
    "include_bias": False,
    "scale_logits": False,
    "input_emb_norm": False,
    "attention_layer_norm": False,
}


def original_to_llama_key(key: str) -> str | None:
    """`model.transformer.blocks.3.ff_out.weight` -> `model.layers.3.mlp.down_proj.weight` (None: not LLaDA)."""
    if key in _TOP_KEYS:
        return _TOP_KEYS[key]
    match = _ORIGINAL_BLOCK.fullmatch(key)
    if match is None or match.group(2) not in _BLOCK_KEYS:
        return None
    return f"model.layers.{match.group(1)}.{_BLOCK_KEYS[match.group(2)]}.weight"


def llama_to_original_key(key: str) -> str | None:
    """The inverse of `original_to_llama_key` (None: not a Llama key of this model)."""
    inverse_top = {v: k for k, v in _TOP_KEYS.items()}
    if key in inverse_top:
        return inverse_top[key]
    match = _LLAMA_BLOCK.fullmatch(key)
    inverse_block = {v: k for k, v in _BLOCK_KEYS.items()}
    if match is None or match.group(2) not in inverse_block:
        return None
    return f"model.transformer.blocks.{match.group(1)}.{inverse_block[match.group(2)]}.weight"


def _rename_all(state_dict: dict[str, torch.Tensor], rename, source: str) -> dict[str, torch.Tensor]:
    renamed = {key: rename(key) for key in state_dict}
    unknown = sorted(k for k, v in renamed.items() if v is None)
    if unknown:
        raise ValueError(
            f"{source}: {len(unknown)} tensors are not part of a LLaDA/Lumina-DiMOO model (first: {unknown[:5]}); "
            "pass a Lumina-DiMOO checkpoint (LLaDA key names `model.transformer.*`)."
        )
    return {renamed[k]: v for k, v in state_dict.items()}


# ------------------------------------------------------------------ config


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(
            f"{path} not found; a Lumina-DiMOO checkpoint folder holds config.json, weights, tokenizer "
            f"files and {VQ_FOLDER}/ (pass that folder)."
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: line {err.lineno}: not valid JSON ({err.msg}); the file is damaged, re-download it."
        ) from err


def llama_config_from_llada(llada: dict, source: Path) -> LlamaConfig:
    """The `LlamaConfig` of a LLaDA config.json (with the original dict kept for writing it back)."""
    if llada.get("model_type") != "llada":
        raise ValueError(f"{source}: model_type={llada.get('model_type')!r}; a Lumina-DiMOO checkpoint has 'llada'.")
    for field, value in _REQUIRED.items():
        if field in llada and llada[field] != value:
            raise ValueError(
                f"{source}: {field}={llada[field]!r} is not supported (Lumina-DiMOO / LLaDA-8B use {value!r}); "
                "this loader only reads the LLaDA Llama-block layout."
            )
    for field in ("d_model", "n_heads", "n_layers", "mlp_hidden_size", "vocab_size"):
        if not isinstance(llada.get(field), int):
            raise ValueError(f"{source}: field {field!r} is missing or not an integer; it is required.")
    return LlamaConfig(
        hidden_size=llada["d_model"],
        num_attention_heads=llada["n_heads"],
        num_key_value_heads=llada.get("n_kv_heads") or llada["n_heads"],
        num_hidden_layers=llada["n_layers"],
        intermediate_size=llada["mlp_hidden_size"],
        vocab_size=llada.get("embedding_size") or llada["vocab_size"],  # the head is embedding_size wide
        rms_norm_eps=llada.get("rms_norm_eps", 1e-5),
        rope_theta=llada.get("rope_theta", 10000.0),
        max_position_embeddings=llada.get("max_sequence_length", 4096),
        hidden_act="silu",
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        bos_token_id=llada.get("bos_token_id"),
        eos_token_id=llada.get("eos_token_id"),
        pad_token_id=llada.get("pad_token_id"),
        llada_config=llada,
    )


def llada_config_from_llama(config: LlamaConfig, dtype: torch.dtype) -> dict:
    """The LLaDA config.json of `config`: the dict it was read from (rope settings and special ids untouched), with
    the sizes it now has."""
    llada = dict(getattr(config, "llada_config", None) or {"model_type": "llada", **_REQUIRED})
    llada.update(
        d_model=config.hidden_size,
        n_heads=config.num_attention_heads,
        n_kv_heads=config.num_key_value_heads,
        n_layers=config.num_hidden_layers,
        mlp_hidden_size=config.intermediate_size,
        embedding_size=config.vocab_size,
        vocab_size=min(llada.get("vocab_size", config.vocab_size), config.vocab_size),
        rms_norm_eps=config.rms_norm_eps,
        max_sequence_length=config.max_position_embeddings,
    )
    llada["torch_dtype"] = next(name for name, d in DTYPE_NAMES.items() if d == dtype)
    return llada


# ------------------------------------------------------------------ weights


def _weight_files(folder: Path) -> list[Path]:
    index = folder / INDEX_NAME
    if index.is_file():
        shards = sorted(set(read_json(index).get("weight_map", {}).values()))
        missing = [s for s in shards if not (folder / s).is_file()]
        if not shards or missing:
            raise ValueError(
                f"{index}: weight_map names missing shards {missing or '(none listed)'}; "
                "the download is incomplete, fetch the missing files."
            )
        return [folder / s for s in shards]
    if (folder / WEIGHTS_NAME).is_file():
        return [folder / WEIGHTS_NAME]
    raise ValueError(
        f"{folder}: neither {WEIGHTS_NAME} nor {INDEX_NAME} found; pass a Lumina-DiMOO checkpoint folder."
    )


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one safetensors file, with an error naming the file when it is truncated or not safetensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(
            f"{path}: not a readable safetensors file ({err}); it is truncated or damaged, re-download or re-save it."
        ) from err


def read_original_weights(folder: Path) -> dict[str, torch.Tensor]:
    state_dict: dict[str, torch.Tensor] = {}
    for path in _weight_files(folder):
        state_dict |= read_safetensors(path)
    return state_dict


def _check_shapes(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    wrong = [
        f"{k}: {tuple(v.shape)} != {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or wrong:
        raise ValueError(
            f"{source}: the weights do not match config.json (missing {len(missing)}: {missing[:5]}; wrong shapes: "
            f"{wrong[:5]}); the weights are incomplete or config.json belongs to another model."
        )


# ------------------------------------------------------------------ load


def resolve_dtype(dtype: torch.dtype | str | None, llada: dict) -> torch.dtype:
    if dtype is None or dtype == "auto":
        dtype = llada.get("torch_dtype", "float32")
    if isinstance(dtype, str):
        if dtype not in DTYPE_NAMES:
            raise ValueError(
                f"dtype={dtype!r} is not supported; use a torch.dtype, 'auto' or one of {list(DTYPE_NAMES)}."
            )
        dtype = DTYPE_NAMES[dtype]
    return dtype


def build_language_model(config: LlamaConfig, state_dict: dict[str, torch.Tensor], source: Path) -> LlamaForCausalLM:
    """`LlamaForCausalLM` holding `state_dict`'s tensors, built without a random init (meta, then assign)."""
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    _check_shapes(model, state_dict, source)
    model.load_state_dict(state_dict, assign=True, strict=True)
    # The rotary table is a non-persistent buffer: rebuild it on a real device from the config.
    model.model.rotary_emb = LlamaRotaryEmbedding(config=config)
    return model


def load_vqvae(folder: Path) -> VQModel:
    vq_dir = folder / VQ_FOLDER
    read_json(vq_dir / "config.json")  # a clear error instead of diffusers' hub lookup
    if (vq_dir / VQ_WEIGHTS_NAME).is_file():
        read_safetensors(vq_dir / VQ_WEIGHTS_NAME)  # truncated file -> ValueError naming it
    try:
        vq = VQModel.from_pretrained(vq_dir)
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"{vq_dir}: cannot load the VQ model ({err}); the folder needs a diffusers VQModel "
            f"config.json and {VQ_WEIGHTS_NAME}."
        ) from err
    if not vq.config.lookup_from_codebook:
        raise ValueError(
            f"{vq_dir / 'config.json'}: lookup_from_codebook is false; decoding codes needs it true "
            "(the aMUSEd VQ config sets it)."
        )
    return vq.eval()


def load_tokenizer(folder: Path) -> PreTrainedTokenizerBase:
    """The fast tokenizer of `tokenizer.json` (LLaDA ships one; no remote code is run)."""
    if not (folder / "tokenizer.json").is_file():
        raise ValueError(
            f"{folder / 'tokenizer.json'} not found; copy the tokenizer files from the released "
            "checkpoint into the folder."
        )
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def load_pretrained(
    path: str | Path, dtype: torch.dtype | str | None = None, device: str | torch.device | None = None
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    """(model with `model.vqvae`, tokenizer) from an original Lumina-DiMOO folder. The VQ model stays fp32."""
    folder = Path(path)
    llada = read_json(folder / "config.json")
    config = llama_config_from_llada(llada, folder / "config.json")
    dtype = resolve_dtype(dtype, llada)
    state_dict = _rename_all(read_original_weights(folder), original_to_llama_key, str(folder))
    model = build_language_model(config, {k: v.to(dtype) for k, v in state_dict.items()}, folder)
    model.vqvae = load_vqvae(folder)
    model.eval()
    if device is not None:
        model.to(device)
    return model, load_tokenizer(folder)


# ------------------------------------------------------------------ save


def split_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """A full model state dict -> (language-model tensors, VQ tensors without the `vqvae.` prefix)."""
    vq = {k[len(VQ_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(VQ_PREFIX)}
    lm = {k: v for k, v in state_dict.items() if not k.startswith(VQ_PREFIX)}
    return lm, vq


def _shards(state_dict: dict[str, torch.Tensor], max_shard_bytes: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state_dict.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    return shards


def write_weights(state_dict: dict[str, torch.Tensor], out: Path, max_shard_bytes: int) -> None:
    """Safetensors shards (+ index when more than one), with the `format: pt` metadata transformers 4.x expects."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    shards = _shards(tensors, max_shard_bytes)
    if len(shards) == 1:
        save_file(shards[0], str(out / WEIGHTS_NAME), metadata={"format": "pt"})
        return
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards, strict=True):
        save_file(shard, str(out / name), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(shard, name)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def write_tokenizer(tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """tokenizer.json + a tokenizer_config.json that both transformers 4.x (the original code) and 5.x read."""
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    specials = {name: getattr(tokenizer, name) for name in ("bos_token", "eos_token", "pad_token", "mask_token")}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
    config |= {k: v for k, v in specials.items() if v is not None}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def write_vqvae(vq: VQModel, vq_state: dict[str, torch.Tensor], out: Path) -> None:
    vq_dir = out / VQ_FOLDER
    vq_dir.mkdir()
    vq.save_config(str(vq_dir))
    tensors = {k: v.detach().contiguous().cpu() for k, v in vq_state.items()}
    save_file(tensors, str(vq_dir / VQ_WEIGHTS_NAME), metadata={"format": "pt"})


def _stale_checkpoint_files(out: Path) -> list[Path]:
    """Files of an earlier save in `out` that a new one replaces (shards of another count, the index, the VQ)."""
    names = [*out.glob("model*.safetensors"), out / INDEX_NAME, out / VQ_FOLDER]
    return [p for p in names if p.exists()]


def _move_into(tmp: Path, out: Path) -> None:
    """Move every entry of `tmp` into `out`, replacing the earlier checkpoint's files and keeping everything else
    there (a training run's output folder also holds metrics, samples and `checkpoint-*` folders)."""
    for stale in _stale_checkpoint_files(out):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    for entry in tmp.iterdir():
        os.replace(entry, out / entry.name)


def save_original(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    state_dict: dict[str, torch.Tensor] | None = None,
    max_shard_bytes: int = 5 * 2**30,
) -> Path:
    """Write the original layout into `out_dir`: everything goes to a temp folder first, then each file is renamed
    into place (a failed save leaves the earlier checkpoint whole); other files in `out_dir` are kept.

    `state_dict` (ZeRO-3's gathered weights, transformers names plus `vqvae.*`) replaces the model's own.
    """
    out = Path(out_dir)
    lm_state, vq_state = split_state_dict(state_dict if state_dict is not None else model.state_dict())
    original = _rename_all(lm_state, llama_to_original_key, "model state dict")
    dtype = next(iter(lm_state.values())).dtype
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".saving.", dir=out))
    try:
        config = llada_config_from_llama(model.config, dtype)
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        write_weights(original, tmp, max_shard_bytes)
        write_tokenizer(tokenizer, tmp)
        write_vqvae(model.vqvae, vq_state, tmp)
        _move_into(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Wrote Lumina-DiMOO checkpoint (%d tensors) to %s", len(original), out)
    return out
