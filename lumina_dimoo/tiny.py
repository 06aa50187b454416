"""A tiny random Lumina-DiMOO checkpoint in the ORIGINAL layout, for tests, parity fixtures and the CPU demo.

Written like a released folder: LLaDA `config.json` (tiny sizes, the real 134548-wide vocabulary so every special
id is the released one), `model.safetensors` with the original `model.transformer.*` names (spelled out here from
the original module structure, independently of `lumina_dimoo.checkpoint`), a byte-level BPE tokenizer trained
offline whose special tokens sit at the released ids, and a `vqvae/` diffusers folder (aMUSEd-shaped, 8 channels).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from diffusers import VQModel
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from lumina_dimoo.checkpoint import VQ_FOLDER, WEIGHTS_NAME, write_tokenizer
from lumina_dimoo.tokens import DimooTokens

logger = logging.getLogger(__name__)

TOKENS = DimooTokens()
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
MASK = "<|mdm_mask|>"
# Released ids of the LLaDA / Lumina-DiMOO added tokens; the prompt tags' real ids are not public, so the tiny
# tokenizer puts them on otherwise unused ids (each still one token, as the original's `ids[:-1] + image` needs).
SPECIAL_IDS = {
    126080: BOS,
    TOKENS.eos: EOS,
    TOKENS.row_break: "<|image_row_break|>",
    TOKENS.mask: MASK,
    TOKENS.answer_pad: "<|answer_pad|>",
    126340: "<system>",
    126341: "</system>",
    126342: "<user>",
    126343: "</user>",
    TOKENS.boi: "<IMAGE>",
    TOKENS.eoi: "</IMAGE>",
    TOKENS.uncondition: "<uncondition>",
    TOKENS.answer_start: "<answer>",
    TOKENS.answer_end: "</answer>",
}
TEXT_VOCAB = TOKENS.image_offset  # tokenizer ids; image codes follow in the model's vocabulary only
TINY_IMAGE_SIZE = 64  # generated images: 4 x 4 codes with the 16x VQ

TINY_CORPUS = """
A photo of a red apple on a wooden table. A blue car parked next to a green tree. Two cats sit on a yellow sofa.
What color is the sky? The sky is blue. What is in the image? There is a white cup. How many birds are there?
A. one B. two C. three D. four. The answer is B. Answer with the option's letter from the given choices directly.
You are a multimodal model that can process both text and images. Answer the following question based on the
provided images. Analyze each image and combine relevant details to answer. Generate an image according to the
text prompt. A black and white photograph of a city street at night. An orange cat sleeping in the sun.
"""


def build_tokenizer(corpus: str = TINY_CORPUS, bpe_size: int = 400) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on `corpus`, padded with reserved tokens so the special tokens get the released ids."""
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    trained.train_from_iterator([line for line in corpus.strip().splitlines() for _ in range(4)], trainer=trainer)
    state = json.loads(trained.to_str())
    vocab = dict(state["model"]["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["model"]["merges"]]
    for i in range(len(vocab), TEXT_VOCAB):
        vocab[SPECIAL_IDS.get(i, f"<|reserved_{i}|>")] = i
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(SPECIAL_IDS.values()))  # already in the vocab: they keep their ids
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=EOS, mask_token=MASK
    )


def tiny_llada_config() -> dict:
    """LLaDA-8B's config.json with tiny sizes (d_model 64, 2 layers, 4 heads), the released vocabulary width."""
    return {
        "architectures": ["LLaDAForMultiModalGeneration"],
        "model_type": "llada",
        "d_model": 64,
        "n_heads": 4,
        "n_kv_heads": 4,
        "n_layers": 2,
        "mlp_ratio": 2,
        "mlp_hidden_size": 128,
        "activation_type": "silu",
        "block_type": "llama",
        "block_group_size": 1,
        "alibi": False,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": 500000.0,
        "flash_attention": False,
        "attention_dropout": 0.0,
        "residual_dropout": 0.0,
        "embedding_dropout": 0.0,
        "attention_layer_norm": False,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "rms_norm_eps": 1e-05,
        "include_bias": False,
        "include_qkv_bias": False,
        "scale_logits": False,
        "max_sequence_length": 4096,
        "vocab_size": TOKENS.vocab_size,
        "embedding_size": TOKENS.vocab_size,
        "weight_tying": False,
        "eos_token_id": TOKENS.eos,
        "pad_token_id": TOKENS.eos,
        "mask_token_id": TOKENS.mask,
        "bos_token_id": 126080,
        "init_device": "cpu",
        "init_std": 0.02,
        "torch_dtype": "float32",
        "use_cache": False,
        "pairuni_image_size": TINY_IMAGE_SIZE,
    }


def tiny_vq_config() -> dict:
    """aMUSEd-VQ's structure (5 levels = 16x, 8192 codes, codebook lookup) at 8 channels per level."""
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 5,
        "up_block_types": ["UpDecoderBlock2D"] * 5,
        "block_out_channels": [8] * 5,
        "layers_per_block": 1,
        "latent_channels": 4,
        "num_vq_embeddings": TOKENS.codebook_size,
        "norm_num_groups": 4,
        "lookup_from_codebook": True,
        "mid_block_add_attention": False,
        "norm_type": "group",
        "force_upcast": True,
    }


def original_param_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor of an original LLaDA checkpoint of `config` (Llama blocks, untied head, no biases)."""
    d, ff, v = config["d_model"], config["mlp_hidden_size"], config["embedding_size"]
    kv = d // config["n_heads"] * config["n_kv_heads"]
    shapes = {"model.transformer.wte.weight": (v, d)}
    for i in range(config["n_layers"]):
        block = f"model.transformer.blocks.{i}."
        shapes |= {
            block + "attn_norm.weight": (d,),
            block + "ff_norm.weight": (d,),
            block + "q_proj.weight": (d, d),
            block + "k_proj.weight": (kv, d),
            block + "v_proj.weight": (kv, d),
            block + "attn_out.weight": (d, d),
            block + "ff_proj.weight": (ff, d),
            block + "up_proj.weight": (ff, d),
            block + "ff_out.weight": (d, ff),
        }
    return shapes | {"model.transformer.ln_f.weight": (d,), "model.transformer.ff_out.weight": (v, d)}


def random_weights(config: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Norms at 1, everything else N(0, 0.02) (LLaDA's init_std)."""
    return {
        name: torch.ones(shape) if name.endswith("norm.weight") else 0.02 * torch.randn(shape, generator=generator)
        for name, shape in original_param_shapes(config).items()
    }


def build_tiny_checkpoint(
    out_dir: str | Path,
    seed: int = 0,
    config: dict | None = None,
    vq_config: dict | None = None,
    corpus: str = TINY_CORPUS,
) -> Path:
    """Write a random checkpoint (original layout) to `out_dir`; deterministic given `seed`. The defaults are the
    tiny one; the demo's toy model (`scripts/toy_lumina.py`) passes its own sizes and its world's corpus."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = config or tiny_llada_config()
    weights = random_weights(config, torch.Generator().manual_seed(seed))
    save_file(weights, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    write_tokenizer(build_tokenizer(corpus), out)
    torch.manual_seed(seed)  # diffusers initialises from the global RNG
    VQModel(**(vq_config or tiny_vq_config())).save_pretrained(str(out / VQ_FOLDER))
    logger.info("Wrote tiny Lumina-DiMOO checkpoint (%d tensors) to %s", len(weights), out)
    return out
