"""Show-o checkpoints in the ORIGINAL layout (showlab/show-o*, showlab/magvitv2) <-> `ShowoModel`.

A folder holds the original `config.json` (`_class_name: Showo`, `llm_model_path`, `llm_vocab_size`, ...) and
`pytorch_model.safetensors` with `showo.`-prefixed keys. The Phi config and tokenizer come from `llm_model_path`
and MAGVIT-v2 from `vq_model_path` (default `magvitv2`), each resolved as given or relative to the folder. The
body is transformers' `PhiForCausalLM` with `qk_layernorm=True` (the original's Phi fork forces it). Saving writes
the same layout back, key for key and bit for bit, with the Phi and MAGVIT folders inside the output folder.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    PhiConfig,
    PhiForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)

from backbones.checkpoint_files import replacing_checkpoint
from showo.magvit import MagvitConfig, MagvitV2
from showo.tokens import PAD_TOKEN, SPECIAL_TOKENS, ShowoVocab

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "pytorch_model.safetensors"  # the original ModelMixin's safetensors name (Show-o and MAGVIT-v2)
PREFIX = "showo."
PHI_DIR, VQ_DIR = "phi", "magvitv2"  # where `save` puts the Phi config/tokenizer and MAGVIT-v2
REQUIRED_FIELDS = ("vocab_size", "llm_vocab_size", "llm_model_path", "codebook_size", "num_vq_tokens")


class ShowoConfig(PretrainedConfig):
    """The Show-o fields (`showo`: the original config.json dict), the Phi config, and the MAGVIT-v2 sizes."""

    model_type = "showo"

    def __init__(self, showo: dict | None = None, phi: dict | None = None, magvit: dict | None = None, **kwargs):
        self.showo, self.phi, self.magvit = showo or {}, phi or {}, magvit or {}
        self.hidden_size = self.phi.get("hidden_size", 0)  # DeepSpeed's "auto" bucket sizes read it
        super().__init__(**kwargs)


class ShowoModel(PreTrainedModel):
    """`showo` (Phi LM over text + image tokens, one shared head) and `vq_model` (MAGVIT-v2)."""

    config_class = ShowoConfig
    _no_split_modules = ["PhiDecoderLayer"]
    supports_gradient_checkpointing = True  # PhiModel's decoder layers checkpoint (the trainer's recipes turn it on)

    def __init__(self, config: ShowoConfig):
        super().__init__(config)
        self.showo = PhiForCausalLM(phi_config(config.phi, config.showo["vocab_size"]))
        self.vq_model = MagvitV2(MagvitConfig.from_dict(config.magvit))
        self.generation_config = GenerationConfig()  # TRL reads it
        self.post_init()

    def forward(self, input_ids, attention_mask=None, position_ids=None, **kwargs):
        return self.showo(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)


def phi_config(raw: dict, vocab_size: int) -> PhiConfig:
    """Phi config with the Show-o vocabulary and QK layer norm (what the original fork forces)."""
    config = PhiConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "transformers_version")})
    config.vocab_size, config.qk_layernorm, config.tie_word_embeddings = vocab_size, True, False
    return config


def _resolve(base: Path, value: str, field: str) -> Path:
    """`value` as a folder, or relative to the checkpoint, or its last path part inside the checkpoint."""
    for candidate in (Path(value), base / value, base / Path(value).name):
        if (candidate / "config.json").is_file():
            return candidate
    raise ValueError(
        f"{base / 'config.json'}: {field}={value!r} is not a local folder with config.json; download it (e.g. "
        f"microsoft/phi-1_5, showlab/magvitv2) into {base / Path(value).name} or set {field} to a local folder."
    )


def read_showo_config(path: str | Path) -> dict:
    """The original Show-o config.json of a folder, with the fields this loader needs checked."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{config_file} not found: pass a Show-o checkpoint folder (config.json + {WEIGHTS_NAME}).")
    try:
        raw = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file}: not valid JSON ({err}); the checkpoint is damaged.") from err
    missing = [f for f in REQUIRED_FIELDS if f not in raw]
    if raw.get("_class_name") != "Showo" or missing:
        raise ValueError(
            f"{config_file}: not a Show-o config (_class_name={raw.get('_class_name')!r}, missing {missing}); "
            "pass a showlab/show-o* folder."
        )
    if raw.get("w_clip_vit"):
        raise ValueError(
            f"{config_file}: w_clip_vit=true (the CLIP-ViT variant) is not supported; use show-o(-512x512)."
        )
    vocab = vocab_from_config(raw, bos_id=0, eos_id=0)
    if raw["vocab_size"] != vocab.vocab_size or raw.get("mask_token_id", vocab.mask_id) != vocab.mask_id:
        raise ValueError(
            f"{config_file}: vocab_size={raw['vocab_size']} / mask_token_id={raw.get('mask_token_id')} do not match "
            f"llm_vocab_size + 10 + codebook_size + 1 = {vocab.vocab_size}; the config is inconsistent."
        )
    return raw


def vocab_from_config(raw: dict, bos_id: int, eos_id: int) -> ShowoVocab:
    return ShowoVocab(raw["llm_vocab_size"], raw["codebook_size"], bos_id, eos_id)


def load_tokenizer(phi_dir: Path, llm_vocab_size: int):
    """Phi's tokenizer plus [PAD] and the nine Show-o tokens, added in the original order (ids must line up)."""
    tokenizer = AutoTokenizer.from_pretrained(phi_dir)
    tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    tokenizer.add_tokens(list(SPECIAL_TOKENS))
    if tokenizer.convert_tokens_to_ids(PAD_TOKEN) != llm_vocab_size:
        raise ValueError(
            f"{phi_dir}: the tokenizer puts [PAD] at id {tokenizer.convert_tokens_to_ids(PAD_TOKEN)}, the config's "
            f"llm_vocab_size is {llm_vocab_size}; llm_model_path must be the Phi tokenizer Show-o was trained with."
        )
    return tokenizer


def _load_weights(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise ValueError(f"{file} not found: the checkpoint has no weights file.")
    try:
        return load_file(file)
    except (SafetensorError, OSError) as err:
        raise ValueError(
            f"{file}: cannot be read ({err}); the file is truncated or damaged, download it again."
        ) from err


def _check_keys(file: Path, found: set[str], expected: set[str]) -> None:
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise ValueError(
            f"{file}: {len(missing)} missing keys (e.g. {missing[:3]}) and {len(unexpected)} unexpected keys (e.g. "
            f"{unexpected[:3]}); the weights do not belong to this config."
        )


def load_pretrained(path, dtype=None, device=None) -> tuple[ShowoModel, object, ShowoVocab]:
    """(model, tokenizer, vocab) from an original-layout Show-o folder."""
    base = Path(path)
    raw = read_showo_config(base)
    phi_dir = _resolve(base, raw["llm_model_path"], "llm_model_path")
    vq_dir = _resolve(base, raw.get("vq_model_path", VQ_DIR), "vq_model_path")
    magvit_raw = json.loads((vq_dir / "config.json").read_text())
    phi_raw = json.loads((phi_dir / "config.json").read_text())
    config = ShowoConfig(showo=raw, phi=phi_raw, magvit=magvit_raw)
    with torch.device("meta"):
        model = ShowoModel(config)
    lm = {k.removeprefix(PREFIX): v for k, v in _load_weights(base / WEIGHTS_NAME).items()}
    vq = _load_weights(vq_dir / WEIGHTS_NAME)
    _check_keys(base / WEIGHTS_NAME, {PREFIX + k for k in lm}, {PREFIX + k for k in model.showo.state_dict()})
    _check_keys(vq_dir / WEIGHTS_NAME, set(vq), set(model.vq_model.state_dict()))
    model.showo.load_state_dict(lm, assign=True, strict=True)
    model.vq_model.load_state_dict(vq, assign=True, strict=True)
    model.showo.model.rotary_emb = type(model.showo.model.rotary_emb)(config=model.showo.config)  # off meta
    if dtype is not None:
        model.showo.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
    model.to(device or "cpu").eval()
    tokenizer = load_tokenizer(phi_dir, raw["llm_vocab_size"])
    vocab = vocab_from_config(raw, tokenizer.bos_token_id, tokenizer.eos_token_id)
    model.showo_source = {"phi_dir": str(phi_dir), "vq_dir": str(vq_dir)}
    return model, tokenizer, vocab


def save_original(model: ShowoModel, tokenizer, out_dir: str | Path, state_dict: dict | None = None) -> None:
    """Write the original layout (+ `phi/` and `magvitv2/` folders) into `out_dir`: everything is staged first, then
    the earlier save's config.json, weights, `phi/` and `magvitv2/` are replaced; other files in `out_dir` (a
    training run's metrics, samples, `checkpoint-*` folders) are kept.
    `state_dict` (ZeRO-3's gathered weights, keys `showo.*` / `vq_model.*`) replaces the model's own."""
    out = Path(out_dir)
    state = state_dict if state_dict is not None else model.state_dict()
    stale = [out / "config.json", out / WEIGHTS_NAME, out / PHI_DIR, out / VQ_DIR]
    with replacing_checkpoint(out, stale) as tmp:
        raw = dict(model.config.showo) | {"llm_model_path": PHI_DIR, "vq_model_path": VQ_DIR}
        (tmp / "config.json").write_text(json.dumps(raw, indent=2) + "\n")
        lm = {k: v.detach().contiguous().cpu() for k, v in state.items() if k.startswith(PREFIX)}
        save_file(lm, tmp / WEIGHTS_NAME, metadata={"format": "pt"})
        (tmp / PHI_DIR).mkdir()
        (tmp / PHI_DIR / "config.json").write_text(json.dumps(model.config.phi, indent=2) + "\n")
        _save_base_tokenizer(tokenizer, model, tmp / PHI_DIR)
        (tmp / VQ_DIR).mkdir()
        (tmp / VQ_DIR / "config.json").write_text(json.dumps(model.config.magvit, indent=2) + "\n")
        vq = {
            k.removeprefix("vq_model."): v.detach().contiguous().cpu()
            for k, v in state.items()
            if k.startswith("vq_model.")
        }
        save_file(vq, tmp / VQ_DIR / WEIGHTS_NAME, metadata={"format": "pt"})
    logger.info("Saved Show-o (original layout) to %s", out)


def _save_base_tokenizer(tokenizer, model: ShowoModel, out: Path) -> None:
    """The Phi tokenizer files as loaded (before the Show-o tokens were added), copied from the source folder."""
    phi_dir = getattr(model, "showo_source", {}).get("phi_dir")  # None: not loaded by load_pretrained
    source = Path(phi_dir) if phi_dir else None
    is_dir = source is not None and source.is_dir()
    files = [f for f in source.iterdir() if f.is_file() and f.name != "config.json"] if is_dir else []
    if not files:
        raise ValueError(f"the model has no Phi tokenizer folder to copy ({source}); load it with load_pretrained.")
    for f in files:
        shutil.copy2(f, out / f.name)
