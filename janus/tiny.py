"""A tiny random Janus-Pro checkpoint in the ORIGINAL DeepSeek layout, for tests and the CPU demo.

It is written exactly like a real `deepseek-ai/Janus-Pro-*` folder (config.json `multi_modality`,
`pytorch_model.bin` with the original key names, tokenizer and processor files), so tests exercise
the same loading path as real weights. The key list is spelled out here from the original module
structure (timm ViT, MlpProjector, LlamaForCausalLM, LlamaGen VQ-16), independently of the converter
in `janus.checkpoint`. The VQ model and vision tower are shrunk through the documented `params`
extension keys (see `janus.checkpoint`). Deterministic given the seed; builds in about a second.
"""

import json
import logging
import math
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from janus.processor import (
    ASSISTANT_ROLE,
    BOI_TOKEN,
    BOS_TOKEN,
    EOI_TOKEN,
    EOS_TOKEN,
    IMAGE_TOKEN,
    PAD_TOKEN,
    USER_ROLE,
    write_original_tokenizer_files,
    write_processor_files,
)

logger = logging.getLogger(__name__)


ROLE_TOKENS = [USER_ROLE, ASSISTANT_ROLE]
# Same order as the real tokenizer: BOS/EOS/pad/boi first, then the image tags, then the role tags.
SPECIAL_TOKENS = [BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, BOI_TOKEN, EOI_TOKEN, IMAGE_TOKEN, *ROLE_TOKENS]

# Small built-in English corpus: enough merges for readable tokens, no download.
TINY_CORPUS = """
A photo of a red apple on a wooden table. A blue car parked next to a green tree.
Two cats are sitting on a yellow sofa. The dog runs across the grass in the park.
What color is the sky? The sky is blue. What is in the image? There is a white cup.
Answer with the option's letter from the given choices directly. Question: how many birds are there?
A. one B. two C. three D. four. The answer is B. Please describe the picture in detail.
A black and white photograph of a city street at night with bright lights and tall buildings.
An orange cat sleeping in the sun. A purple flower in a glass vase by the window.
The man is holding an umbrella in the rain. A child plays with a ball on the beach near the sea.
You are a helpful language and vision assistant. You are able to understand the visual content
that the user provides, and assist the user with a variety of tasks using natural language.
<think> Let me look at the image carefully. </think> <answer> A </answer>
"""

TINY_VOCAB_SIZE = 480  # BPE vocab before the special tokens are appended


def build_bpe_tokenizer(corpus: str = TINY_CORPUS, vocab_size: int = TINY_VOCAB_SIZE) -> Tokenizer:
    """Byte-level BPE trained on `corpus`, with the Janus special tokens appended after the vocab."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    lines = [line for line in corpus.strip().splitlines() for _ in range(4)]
    tokenizer.train_from_iterator(lines, trainer=trainer)
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    return tokenizer


def tiny_config(vocab_size: int) -> dict:
    """The original-format config.json of the tiny model (Janus-Pro structure, tiny sizes)."""
    hidden = 64
    return {
        "architectures": ["MultiModalityCausalLM"],
        "model_type": "multi_modality",
        "torch_dtype": "float32",
        "language_config": {
            "model_type": "llama",
            "hidden_size": hidden,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 1024,
            "vocab_size": vocab_size,
            "torch_dtype": "float32",
        },
        "vision_config": {
            "cls": "CLIPVisionTower",
            "model_type": "vision",
            # image_size/select_* are real original params (select_layer 2 = the first 2 blocks, the original
            # code's own truncation); width/heads/patch_size/mlp_ratio are extension keys shrinking the preset.
            "params": {
                "image_size": 32,
                "model_name": "siglip_large_patch16_384",
                "select_feature": "same",
                "select_layer": 2,
                "width": 32,
                "heads": 2,
                "patch_size": 8,
                "mlp_ratio": 4,
            },
        },
        "aligner_config": {
            "cls": "MlpProjector",
            "model_type": "aligner",
            "params": {"depth": 2, "input_dim": 32, "n_embed": hidden, "projector_type": "mlp_gelu"},
        },
        "gen_vision_config": {
            "cls": "VQ-16",
            "model_type": "gen_vision",
            # ch_mult of length 4 -> downsample 8 == vision patch, so the 4x4 VQ grid matches 16 image tokens.
            # Channel counts stay multiples of 32 because the VQ uses GroupNorm(32).
            "params": {
                "image_token_size": 256,
                "n_embed": 8,
                "codebook_size": 256,
                "codebook_embed_dim": 8,
                "ch": 32,
                "ch_mult": [1, 1, 2, 2],
                "z_channels": 32,
                "num_res_blocks": 1,
            },
        },
        "gen_aligner_config": {
            "cls": "MlpProjector",
            "model_type": "gen_aligner",
            "params": {"depth": 2, "input_dim": 8, "n_embed": hidden, "projector_type": "mlp_gelu"},
        },
        "gen_head_config": {
            "cls": "vision_head",
            "model_type": "gen_head",
            "params": {"image_token_embed": hidden, "image_token_size": 256, "n_embed": hidden},
        },
    }


def _vision_shapes(p: dict) -> dict[str, tuple[int, ...]]:
    """timm VisionTransformer (no class token, MAP pool head) as used by the original siglip_vit."""
    width, mlp = p["width"], int(p["width"] * p["mlp_ratio"])
    grid = p["image_size"] // p["patch_size"]
    pre = "vision_model.vision_tower."
    shapes = {
        pre + "pos_embed": (1, grid * grid, width),
        pre + "patch_embed.proj.weight": (width, 3, p["patch_size"], p["patch_size"]),
        pre + "patch_embed.proj.bias": (width,),
    }
    # Blocks the original create_siglip_vit builds (preset depth 24 unless given; select_layer <= 0 counts from
    # the end), spelled out independently of the converter.
    depth, select = p.get("layers", 24), p["select_layer"]
    for i in range(min(depth, depth + select + 1) if select <= 0 else min(depth, select)):
        b = f"{pre}blocks.{i}."
        shapes |= {
            b + "norm1.weight": (width,),
            b + "norm1.bias": (width,),
            b + "attn.qkv.weight": (3 * width, width),
            b + "attn.qkv.bias": (3 * width,),
            b + "attn.proj.weight": (width, width),
            b + "attn.proj.bias": (width,),
            b + "norm2.weight": (width,),
            b + "norm2.bias": (width,),
            b + "mlp.fc1.weight": (mlp, width),
            b + "mlp.fc1.bias": (mlp,),
            b + "mlp.fc2.weight": (width, mlp),
            b + "mlp.fc2.bias": (width,),
        }
    shapes |= {pre + "norm.weight": (width,), pre + "norm.bias": (width,)}
    # The MAP attention-pool head exists in the real checkpoint but is never used at runtime.
    ap = pre + "attn_pool."
    shapes |= {
        ap + "latent": (1, 1, width),
        ap + "q.weight": (width, width),
        ap + "q.bias": (width,),
        ap + "kv.weight": (2 * width, width),
        ap + "kv.bias": (2 * width,),
        ap + "proj.weight": (width, width),
        ap + "proj.bias": (width,),
        ap + "norm.weight": (width,),
        ap + "norm.bias": (width,),
        ap + "mlp.fc1.weight": (mlp, width),
        ap + "mlp.fc1.bias": (mlp,),
        ap + "mlp.fc2.weight": (width, mlp),
        ap + "mlp.fc2.bias": (width,),
    }
    return shapes


def _resnet_shapes(prefix: str, c_in: int, c_out: int) -> dict[str, tuple[int, ...]]:
    shapes = {
        prefix + "norm1.weight": (c_in,),
        prefix + "norm1.bias": (c_in,),
        prefix + "conv1.weight": (c_out, c_in, 3, 3),
        prefix + "conv1.bias": (c_out,),
        prefix + "norm2.weight": (c_out,),
        prefix + "norm2.bias": (c_out,),
        prefix + "conv2.weight": (c_out, c_out, 3, 3),
        prefix + "conv2.bias": (c_out,),
    }
    if c_in != c_out:
        shapes |= {prefix + "nin_shortcut.weight": (c_out, c_in, 1, 1), prefix + "nin_shortcut.bias": (c_out,)}
    return shapes


def _attn_shapes(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    shapes = {prefix + "norm.weight": (c,), prefix + "norm.bias": (c,)}
    for name in ("q", "k", "v", "proj_out"):
        shapes |= {f"{prefix}{name}.weight": (c, c, 1, 1), f"{prefix}{name}.bias": (c,)}
    return shapes


def _conv_shapes(prefix: str, c_out: int, c_in: int, k: int) -> dict[str, tuple[int, ...]]:
    return {prefix + "weight": (c_out, c_in, k, k), prefix + "bias": (c_out,)}


def _vq_shapes(p: dict) -> dict[str, tuple[int, ...]]:
    """LlamaGen VQ model (encoder, quantizer, decoder) with the original Janus key names."""
    ch, mult, z, n_res = p["ch"], p["ch_mult"], p["z_channels"], p["num_res_blocks"]
    pre = "gen_vision_model."
    shapes = _conv_shapes(pre + "encoder.conv_in.", ch, 3, 3)
    block_in = ch
    for level, m in enumerate(mult):
        for j in range(n_res):
            shapes |= _resnet_shapes(f"{pre}encoder.conv_blocks.{level}.res.{j}.", block_in, ch * m)
            block_in = ch * m
            if level == len(mult) - 1:
                shapes |= _attn_shapes(f"{pre}encoder.conv_blocks.{level}.attn.{j}.", block_in)
        if level != len(mult) - 1:
            shapes |= _conv_shapes(f"{pre}encoder.conv_blocks.{level}.downsample.conv.", block_in, block_in, 3)
    for part in ("encoder", "decoder"):
        c_mid = ch * mult[-1]
        shapes |= _resnet_shapes(f"{pre}{part}.mid.0.", c_mid, c_mid) | _attn_shapes(f"{pre}{part}.mid.1.", c_mid)
        shapes |= _resnet_shapes(f"{pre}{part}.mid.2.", c_mid, c_mid)
    shapes |= {pre + "encoder.norm_out.weight": (block_in,), pre + "encoder.norm_out.bias": (block_in,)}
    shapes |= _conv_shapes(pre + "encoder.conv_out.", z, block_in, 3)
    shapes |= {pre + "quantize.embedding.weight": (p["codebook_size"], p["codebook_embed_dim"])}
    shapes |= {pre + "quantize.codebook_used": (65536,)}
    shapes |= _conv_shapes(pre + "quant_conv.", p["codebook_embed_dim"], z, 1)
    shapes |= _conv_shapes(pre + "post_quant_conv.", z, p["codebook_embed_dim"], 1)
    block_in = ch * mult[-1]
    shapes |= _conv_shapes(pre + "decoder.conv_in.", block_in, z, 3)
    for n, level in enumerate(reversed(range(len(mult)))):
        for j in range(n_res + 1):
            shapes |= _resnet_shapes(f"{pre}decoder.conv_blocks.{n}.res.{j}.", block_in, ch * mult[level])
            block_in = ch * mult[level]
            if level == len(mult) - 1:
                shapes |= _attn_shapes(f"{pre}decoder.conv_blocks.{n}.attn.{j}.", block_in)
        if level != 0:
            shapes |= _conv_shapes(f"{pre}decoder.conv_blocks.{n}.upsample.conv.", block_in, block_in, 3)
    shapes |= {pre + "decoder.norm_out.weight": (block_in,), pre + "decoder.norm_out.bias": (block_in,)}
    shapes |= _conv_shapes(pre + "decoder.conv_out.", 3, block_in, 3)
    return shapes


def _mlp_projector_shapes(prefix: str, p: dict) -> dict[str, tuple[int, ...]]:
    shapes = {prefix + "layers.0.weight": (p["n_embed"], p["input_dim"]), prefix + "layers.0.bias": (p["n_embed"],)}
    for k in range(1, p["depth"]):
        shapes |= {
            f"{prefix}layers.{2 * k}.weight": (p["n_embed"], p["n_embed"]),
            f"{prefix}layers.{2 * k}.bias": (p["n_embed"],),
        }
    return shapes


def _language_shapes(c: dict) -> dict[str, tuple[int, ...]]:
    d, ff, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = d // c["num_attention_heads"] * c["num_key_value_heads"]
    pre = "language_model.model."
    shapes = {pre + "embed_tokens.weight": (v, d)}
    for i in range(c["num_hidden_layers"]):
        b = f"{pre}layers.{i}."
        shapes |= {
            b + "self_attn.q_proj.weight": (d, d),
            b + "self_attn.k_proj.weight": (kv, d),
            b + "self_attn.v_proj.weight": (kv, d),
            b + "self_attn.o_proj.weight": (d, d),
            b + "mlp.gate_proj.weight": (ff, d),
            b + "mlp.up_proj.weight": (ff, d),
            b + "mlp.down_proj.weight": (d, ff),
            b + "input_layernorm.weight": (d,),
            b + "post_attention_layernorm.weight": (d,),
        }
    return shapes | {pre + "norm.weight": (d,), "language_model.lm_head.weight": (v, d)}


def original_param_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor of an original-format checkpoint built from `config` (tiny layouts: all params explicit)."""
    gen_head = config["gen_head_config"]["params"]
    gen_vision = config["gen_vision_config"]["params"]
    shapes = _language_shapes(config["language_config"]) | _vision_shapes(config["vision_config"]["params"])
    shapes |= _mlp_projector_shapes("aligner.", config["aligner_config"]["params"])
    shapes |= _mlp_projector_shapes("gen_aligner.", config["gen_aligner_config"]["params"])
    shapes |= _vq_shapes(gen_vision)
    shapes |= {
        "gen_head.output_mlp_projector.weight": (gen_head["image_token_embed"], gen_head["n_embed"]),
        "gen_head.output_mlp_projector.bias": (gen_head["image_token_embed"],),
        "gen_head.vision_head.weight": (gen_head["image_token_size"], gen_head["image_token_embed"]),
        "gen_head.vision_head.bias": (gen_head["image_token_size"],),
        "gen_embed.weight": (gen_vision["image_token_size"], gen_vision["n_embed"]),
    }
    return shapes


def _init_tensor(name: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Reasonable-scale random init so sampled tokens and decoded images are not degenerate."""
    if name.endswith("codebook_used"):
        return torch.zeros(shape)
    is_norm = any(part in name for part in ("norm", "layernorm")) and len(shape) == 1
    if is_norm:
        return torch.ones(shape) if name.endswith("weight") else torch.zeros(shape)
    if name.endswith("bias"):
        return 0.02 * torch.randn(shape, generator=generator)
    if len(shape) == 4:  # conv: fan-in scaling keeps activations O(1) through the VQ decoder
        return torch.randn(shape, generator=generator) / math.sqrt(shape[1] * shape[2] * shape[3])
    if name.endswith("quantize.embedding.weight"):
        return torch.randn(shape, generator=generator)
    return 0.02 * torch.randn(shape, generator=generator)


def build_tiny_checkpoint(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny random Janus-Pro checkpoint in the original DeepSeek layout to `out_dir`; return the folder."""
    tokenizer = build_bpe_tokenizer()
    return write_random_checkpoint(out_dir, tiny_config(vocab_size=tokenizer.get_vocab_size()), tokenizer, seed)


def write_random_checkpoint(out_dir: str | Path, config: dict, tokenizer: Tokenizer, seed: int = 0) -> Path:
    """Write randomly initialised weights for an original-format `config` (plus tokenizer/processor files)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    state_dict = {name: _init_tensor(name, shape, generator) for name, shape in original_param_shapes(config).items()}
    torch.save(state_dict, out / "pytorch_model.bin")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    special_map = {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN}
    write_original_tokenizer_files(PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special_map), out)
    vision = config["vision_config"]["params"]
    write_processor_files(out, vision["image_size"], (vision["image_size"] // vision["patch_size"]) ** 2)
    n_params = sum(t.numel() for t in state_dict.values())
    logger.info("Wrote random Janus-Pro checkpoint (%d tensors, %d values) to %s", len(state_dict), n_params, out)
    return out
