"""A tiny random Show-o checkpoint in the ORIGINAL layout (Show-o config.json + `showo.*` safetensors, a Phi
config/tokenizer folder, a MAGVIT-v2 folder), for tests and the CPU recipe. Built offline: the tokenizer is a
byte-level BPE trained on a few built-in sentences; the real 8192-code LFQ vocabulary is kept, the nets shrink.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from showo.checkpoint import PHI_DIR, PREFIX, VQ_DIR, WEIGHTS_NAME, ShowoConfig, ShowoModel
from showo.magvit import MagvitConfig

logger = logging.getLogger(__name__)

EOT = "<|endoftext|>"  # Phi's bos == eos
CORPUS = """A photo of a red apple on a wooden table. A blue car next to a green tree. Two cats on a yellow sofa.
What color is the sky? The sky is blue. How many birds are there? A. one B. two C. three D. four. The answer is B.
USER: Answer with the option's letter. ASSISTANT: A photo of a white cup and a black dog left of a purple flower."""
TINY_PHI = {
    "model_type": "phi", "architectures": ["PhiForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "partial_rotary_factor": 0.5, "rope_theta": 10000.0,
    "hidden_act": "gelu_new", "layer_norm_eps": 1e-5, "max_position_embeddings": 2048, "resid_pdrop": 0.0,
    "embd_pdrop": 0.0, "attention_dropout": 0.0,
}  # fmt: skip
# 5 levels (16x, as the real one) at width 32 (GroupNorm(32) needs multiples of 32), one ResNet block per level.
TINY_MAGVIT = MagvitConfig(32, (1, 1, 1, 1, 1), (1,) * 5, (1, 1, 1, 1, 1), (1,) * 5)


def build_tokenizer(vocab_size: int = 320) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    backend.train_from_iterator([line for line in CORPUS.splitlines() for _ in range(4)], trainer=trainer)
    backend.add_special_tokens([EOT])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=EOT, eos_token=EOT, unk_token=EOT)


def random_state_dict(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Seeded values for every tensor (norms 1/0, biases small, weights fan-in scaled); buffers kept."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    buffers = {name for name, _ in model.named_buffers()}
    for name, tensor in model.state_dict().items():
        shape = tuple(tensor.shape)
        if name in buffers:
            out[name] = tensor.clone()
        elif "norm" in name and len(shape) == 1:
            out[name] = torch.ones(shape) if name.endswith("weight") else torch.zeros(shape)
        elif len(shape) == 1:
            out[name] = 0.02 * torch.randn(shape, generator=generator)
        else:
            out[name] = torch.randn(shape, generator=generator) / math.sqrt(math.prod(shape[1:]))
    return out


def build_tiny_checkpoint(out_dir: str | Path, seed: int = 0, num_vq_tokens: int = 16) -> Path:
    """Write the tiny checkpoint to `out_dir` (64x64 images = 16 codes by default); same seed, same files."""
    out = Path(out_dir)
    (out / PHI_DIR).mkdir(parents=True, exist_ok=True)
    (out / VQ_DIR).mkdir(exist_ok=True)
    tokenizer = build_tokenizer()
    llm_vocab = len(tokenizer)
    eot = tokenizer.convert_tokens_to_ids(EOT)
    phi = TINY_PHI | {"vocab_size": llm_vocab, "bos_token_id": eot, "eos_token_id": eot}
    vocab_size = llm_vocab + 10 + TINY_MAGVIT.codebook_size + 1
    showo = {
        "_class_name": "Showo", "codebook_size": TINY_MAGVIT.codebook_size, "llm_model_path": PHI_DIR,
        "llm_vocab_size": llm_vocab, "mask_token_id": vocab_size - 1, "num_vq_tokens": num_vq_tokens,
        "vocab_size": vocab_size, "w_clip_vit": False, "vq_model_path": VQ_DIR,
    }  # fmt: skip
    model = ShowoModel(ShowoConfig(showo=showo, phi=phi, magvit=TINY_MAGVIT.to_dict()))
    state = random_state_dict(model, seed)
    save_file({k: v for k, v in state.items() if k.startswith(PREFIX)}, out / WEIGHTS_NAME, metadata={"format": "pt"})
    vq = {k.removeprefix("vq_model."): v for k, v in state.items() if k.startswith("vq_model.")}
    save_file(vq, out / VQ_DIR / WEIGHTS_NAME, metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(showo, indent=2) + "\n")
    (out / PHI_DIR / "config.json").write_text(json.dumps(phi, indent=2) + "\n")
    (out / VQ_DIR / "config.json").write_text(json.dumps({"_class_name": "MAGVITv2"} | TINY_MAGVIT.to_dict()) + "\n")
    tokenizer.save_pretrained(out / PHI_DIR)
    logger.info("Wrote tiny Show-o (%d tensors) to %s", len(state), out)
    return out
