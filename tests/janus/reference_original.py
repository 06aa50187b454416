"""Test-only reference of the ORIGINAL DeepSeek Janus-Pro architecture, consuming original key names directly.

The original package cannot be installed here, so this rebuilds its runtime path from the same parts:
timm's `VisionTransformer` (what the original siglip_vit wraps: no class token, MAP pool unused, fused qkv with bias,
LayerNorm eps 1e-6, exact GELU, output = final norm), `MlpProjector` as Sequential(Linear, GELU, Linear),
transformers' `LlamaForCausalLM`, the gen head and gen embedding, and an independent LlamaGen-style VQ decoder.
Config semantics are the original's: sizes come from the preset tables (`SIGLIP_MODEL_CONFIG[model_name]`, VQ-16's
arguments), never from extra `params` keys; the vision depth comes from `select_layer` (create_siglip_vit);
`image_size` defaults to CLIPVisionTower's 336. Tiny test checkpoints shrink the presets, so tests pass patched tables
(`tiny_tables`), which is what running the original code on them would take. Every weight the original uses must
be present (a missing key would be random-initialised there, the failure this catches); like HF's from_pretrained,
unused stored keys are ignored.
"""

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

SIGLIP_MODEL_CONFIG = {
    "siglip_large_patch16_384": {"width": 1024, "layers": 24, "heads": 16, "patch_size": 16, "mlp_ratio": 4}
}
VQ16 = {
    "codebook_size": 16384,
    "codebook_embed_dim": 8,
    "ch": 128,
    "ch_mult": [1, 1, 2, 2, 4],
    "z_channels": 256,
    "num_res_blocks": 2,
}
UNUSED_AT_RUNTIME = ("attn_pool.",)  # the MAP head: built by timm, never called; the original leaves it random


def tiny_tables(config: dict) -> tuple[dict, dict]:
    """(SigLIP preset table, VQ arguments) with the named preset shrunk to the checkpoint's extension sizes."""
    params = config["vision_config"]["params"]
    preset = SIGLIP_MODEL_CONFIG["siglip_large_patch16_384"]
    shrunk = {k: params.get(k, v) for k, v in preset.items() if k != "layers"} | {"layers": preset["layers"]}
    vq = {k: config["gen_vision_config"]["params"].get(k, v) for k, v in VQ16.items()}
    return {params["model_name"]: shrunk}, vq


def original_vision_depth(preset_layers: int, select_layer: int) -> int:
    """create_siglip_vit: select_layer <= 0 counts from the end, > 0 keeps the first select_layer blocks."""
    if select_layer <= 0:
        return min(preset_layers, preset_layers + select_layer + 1)
    return min(preset_layers, select_layer)


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, c_in, eps=1e-6)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(32, c_out, eps=1e-6)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(_swish(self.norm2(self.conv1(_swish(self.norm1(x))))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 conv projections."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.GroupNorm(32, c, eps=1e-6)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (m(y).flatten(2) for m in (self.q, self.k, self.v))  # [b, c, hw]
        attn = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / c**0.5, dim=-1)  # [b, hw_q, hw_k]
        out = torch.einsum("bij,bcj->bci", attn, v).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class VQDecoder(nn.Module):
    """LlamaGen decoder: conv_in, mid [res, attn, res], conv_blocks (lowest resolution first), norm_out, conv_out."""

    def __init__(self, ch: int, ch_mult: list[int], z_channels: int, num_res_blocks: int):
        super().__init__()
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = nn.ModuleList([ResBlock(block_in, block_in), AttnBlock(block_in), ResBlock(block_in, block_in)])
        self.conv_blocks = nn.ModuleList()
        for level in reversed(range(len(ch_mult))):
            block = nn.Module()
            block.res, block.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                block.res.append(ResBlock(block_in, ch * ch_mult[level]))
                block_in = ch * ch_mult[level]
                if level == len(ch_mult) - 1:
                    block.attn.append(AttnBlock(block_in))
            if level != 0:
                block.upsample = Upsample(block_in)
            self.conv_blocks.append(block)
        self.norm_out = nn.GroupNorm(32, block_in, eps=1e-6)
        self.conv_out = nn.Conv2d(block_in, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for module in self.mid:
            h = module(h)
        for block in self.conv_blocks:
            for i, res in enumerate(block.res):
                h = res(h)
                if len(block.attn) > 0:
                    h = block.attn[i](h)
            if hasattr(block, "upsample"):
                h = block.upsample(h)
        return self.conv_out(_swish(self.norm_out(h)))


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out))


def _load_prefixed(module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str) -> None:
    """Load every `prefix*` tensor into `module`; a missing runtime weight raises, unused stored keys are ignored."""
    sub = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    missing = [
        k for k in module.load_state_dict(sub, strict=False).missing_keys if not k.startswith(UNUSED_AT_RUNTIME)
    ]
    if missing:
        raise KeyError(f"weights missing for the original {prefix!r} module (random init there): {missing[:6]}")


class OriginalJanus(nn.Module):
    """Original Janus-Pro runtime path (understanding, generation head, VQ decode) on an original state dict."""

    def __init__(
        self,
        config: dict,
        state_dict: dict[str, torch.Tensor],
        siglip_presets: dict | None = None,
        vq_args: dict | None = None,
    ):
        super().__init__()
        params = config["vision_config"]["params"]
        preset = (siglip_presets or SIGLIP_MODEL_CONFIG)[params["model_name"]]
        vp = {**preset, "image_size": params.get("image_size", 336)}
        self.vision = VisionTransformer(
            img_size=vp["image_size"],
            patch_size=vp["patch_size"],
            embed_dim=vp["width"],
            depth=original_vision_depth(preset["layers"], params.get("select_layer", -2)),
            num_heads=vp["heads"],
            mlp_ratio=vp["mlp_ratio"],
            class_token=False,
            global_pool="map",
            num_classes=0,
        )
        d = config["language_config"]["hidden_size"]
        self.aligner = _mlp(vp["width"], d)
        gen = config["gen_vision_config"]["params"]
        self.gen_embed = nn.Embedding(gen["image_token_size"], gen["n_embed"])
        self.gen_aligner = _mlp(gen["n_embed"], d)
        head = config["gen_head_config"]["params"]
        self.gen_head = nn.Sequential(
            nn.Linear(head["n_embed"], head["image_token_embed"]),
            nn.GELU(),
            nn.Linear(head["image_token_embed"], head["image_token_size"]),
        )
        vq = vq_args or VQ16  # VQ_16() is built without arguments: gen_vision_config.params play no part
        self.codebook = nn.Parameter(torch.empty(vq["codebook_size"], vq["codebook_embed_dim"]))
        self.post_quant_conv = nn.Conv2d(self.codebook.shape[1], vq["z_channels"], 1)
        self.decoder = VQDecoder(vq["ch"], vq["ch_mult"], vq["z_channels"], vq["num_res_blocks"])
        language = LlamaConfig(**{k: v for k, v in config["language_config"].items() if k != "torch_dtype"})
        language._attn_implementation = "eager"
        self.language_model = LlamaForCausalLM(language)
        self._load(state_dict)
        self.eval()

    def _load(self, sd: dict[str, torch.Tensor]) -> None:
        _load_prefixed(self.vision, sd, "vision_model.vision_tower.")
        _load_prefixed(self.aligner, {k.replace("layers.", "", 1): v for k, v in sd.items()}, "aligner.")
        _load_prefixed(self.gen_aligner, {k.replace("layers.", "", 1): v for k, v in sd.items()}, "gen_aligner.")
        head = {
            "gen_head.0." + k[len("gen_head.output_mlp_projector.") :]: v
            for k, v in sd.items()
            if k.startswith("gen_head.output_mlp_projector.")
        }
        head |= {
            "gen_head.2." + k[len("gen_head.vision_head.") :]: v
            for k, v in sd.items()
            if k.startswith("gen_head.vision_head.")
        }
        _load_prefixed(self.gen_head, head, "gen_head.")
        self.gen_embed.weight.data.copy_(sd["gen_embed.weight"])
        self.codebook.data.copy_(sd["gen_vision_model.quantize.embedding.weight"])
        _load_prefixed(self.post_quant_conv, sd, "gen_vision_model.post_quant_conv.")
        _load_prefixed(self.decoder, sd, "gen_vision_model.decoder.")
        _load_prefixed(self.language_model, sd, "language_model.")

    @torch.no_grad()
    def understanding_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor, image_id: int
    ) -> torch.Tensor:
        """prepare_inputs_embeds: image embeddings replace the <image_placeholder> positions; text lm_head logits."""
        images_embeds = self.aligner(self.vision.forward_features(pixel_values))  # [N, P, D]
        embeds = self.language_model.get_input_embeddings()(input_ids)  # [N, T, D]
        embeds[input_ids == image_id] = images_embeds.reshape(-1, embeds.shape[-1])
        return self.language_model(inputs_embeds=embeds, attention_mask=attention_mask).logits

    @torch.no_grad()
    def generation_logits(self, input_ids: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """Gen-head logits over [prompt, gen embeddings of image_tokens] positions -> [N, T+I, codebook]."""
        text = self.language_model.get_input_embeddings()(input_ids)
        image = self.gen_aligner(self.gen_embed(image_tokens))
        hidden = self.language_model.model(inputs_embeds=torch.cat([text, image], dim=1)).last_hidden_state
        return self.gen_head(hidden)

    @torch.no_grad()
    def decode_tokens(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """decode_code: L2-normalised codebook rows on a square grid -> post_quant_conv -> decoder -> [N,3,H,W]."""
        n, count = image_tokens.shape
        side = int(count**0.5)
        z = F.normalize(self.codebook, p=2, dim=-1)[image_tokens]  # [N, I, C]
        z = z.reshape(n, side, side, -1).permute(0, 3, 1, 2)  # [N, C, h, w]
        return self.decoder(self.post_quant_conv(z))
