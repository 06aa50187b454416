"""Straight-through Gumbel-Softmax image decoding: pixels that equal the sampled image, with gradients to the policy.

UniRL's end-to-end SFT (arXiv 2505.23380, §SFT) lets the answer loss train the image policy: forward, the image is
decoded from hard one-hot tokens (exactly the sampled image); backward, gradients flow through the soft
Gumbel-Softmax weights into the logits, i.e. codebook embedding -> VQ decoder <- pixels <- vision tower <- LM.

Deliberately two passes rather than 576 sampling steps with grad: the tokens are sampled without grad
(`janus.sample_image_tokens`, KV-cached, CFG), then one teacher-forced forward recomputes their logits with grad
(`janus.logprobs.image_hidden_states`). The Gumbel noise is drawn *conditioned on the sampled tokens*
(`conditional_gumbel`: argmax(logits + noise) is the sampled token, with the right conditional law), so the
straight-through estimator is the one of the sampler that produced the image. Memory stays bounded: the
[N, I, V] logits exist one chunk of positions at a time (activation checkpointing, like janus.logprobs), and the VQ
decoder runs one image at a time under checkpointing. Every module is *called*, so ZeRO-3 gathers its weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from janus.forward import cfg_mix, uses_uncond
from janus.logprobs import LOGIT_CHUNK_ELEMENTS, image_hidden_states

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration

    from janus.processor import GenerationBatch


def _standard_gumbel(like: torch.Tensor) -> torch.Tensor:
    return -torch.log(-torch.log(torch.rand_like(like).clamp(1e-20, 1.0 - 1e-7)))


def conditional_gumbel(logits: torch.Tensor, tokens: torch.LongTensor) -> torch.Tensor:
    """Gumbel noise [..., V] distributed as standard Gumbel noise given that argmax(logits + noise) == tokens [...].

    The perturbed maximum of Gumbel(log p_i) is Gumbel(0) for normalised log-probs; every other entry is its
    Gumbel(log p_i) truncated below that maximum: z_i = -log(exp(-z_max) + exp(-(log p_i + g_i))). Uses the global
    RNG, so checkpoint recomputation (which restores it) redraws the same noise.
    """
    logp = logits.detach().float().log_softmax(-1)  # [..., V]
    gumbel = _standard_gumbel(logp)  # [..., V]
    top = _standard_gumbel(logp[..., :1])  # [..., 1], Gumbel(0): the perturbed maximum
    truncated = -torch.logaddexp(-top, -(logp + gumbel))  # [..., V], every entry below `top`
    chosen = F.one_hot(tokens, logp.shape[-1]).bool()  # [..., V]
    perturbed = torch.where(chosen, top.expand_as(logp), truncated)
    return perturbed - logp


def straight_through(logits: torch.Tensor, tokens: torch.LongTensor, noise: torch.Tensor, tau: float) -> torch.Tensor:
    """Weights [..., V]: the one-hot `tokens` forward, d softmax((logits + noise) / tau) backward."""
    soft = ((logits.float() + noise) / tau).softmax(-1)
    hard = F.one_hot(tokens, soft.shape[-1]).to(soft.dtype)
    return hard + (soft - soft.detach())  # exactly `hard` forward: the parenthesised difference is 0


def _codebook(model: JanusForConditionalGeneration) -> torch.Tensor:
    """The L2-normalised VQ codebook [V, C], read through the embedding module (so ZeRO-3 gathers it)."""
    embedding = model.model.vqmodel.quantize.embedding
    ids = torch.arange(model.config.vq_config.num_embeddings, device=model.device)
    return F.normalize(embedding(ids), p=2, dim=-1)


def _chunk_latents(
    model: JanusForConditionalGeneration,
    cond_hidden: torch.Tensor,
    uncond_hidden: torch.Tensor | None,
    tokens: torch.LongTensor,
    cfg_weight: float | None,
    temperature: float,
    tau: float,
) -> torch.Tensor:
    """hidden [N, C, D] -> straight-through codebook latents [N, C, E] of the sampled `tokens` [N, C]."""
    head = model.model.generation_head
    logits = cfg_mix(head(cond_hidden), head(uncond_hidden) if uncond_hidden is not None else None, cfg_weight)
    logits = logits / temperature  # [N, C, V], the distribution that sampled the tokens
    weights = straight_through(logits, tokens, conditional_gumbel(logits, tokens), tau)  # [N, C, V]
    return weights @ _codebook(model).float()  # [N, C, E]


def straight_through_latents(
    model: JanusForConditionalGeneration,
    batch: GenerationBatch,
    image_tokens: torch.LongTensor,
    *,
    cfg_weight: float | None,
    temperature: float = 1.0,
    tau: float = 1.0,
) -> torch.Tensor:
    """Codebook latents [N, I, E] of `image_tokens` [N, I] with straight-through gradients to the image policy."""
    if tau <= 0:
        raise ValueError(f"gumbel_temperature={tau} must be > 0.")
    n = image_tokens.shape[0]
    with_uncond = uses_uncond(cfg_weight)
    hidden = image_hidden_states(model, batch, image_tokens, with_uncond)  # [R, I, D]
    vocab = model.config.vq_config.num_embeddings
    chunk = max(1, LOGIT_CHUNK_ELEMENTS // max(1, n * vocab * (3 if with_uncond else 2)))
    parts = []
    for start in range(0, image_tokens.shape[1], chunk):
        window = slice(start, start + chunk)
        args = (
            model,
            hidden[:n, window],
            hidden[n:, window] if with_uncond else None,
            image_tokens[:, window],
            cfg_weight,
            temperature,
            tau,
        )
        # determinism_check="none": under ZeRO-3 the recompute sees released weights (see janus.logprobs).
        parts.append(checkpoint(_chunk_latents, *args, use_reentrant=False, determinism_check="none"))
    return torch.cat(parts, dim=1)


def _decode_latents(model: JanusForConditionalGeneration, latents: torch.Tensor) -> torch.Tensor:
    vq = model.model.vqmodel
    return vq.decoder(vq.post_quant_conv(latents))


def decode_latents(model: JanusForConditionalGeneration, latents: torch.Tensor) -> torch.Tensor:
    """Latents [N, I, E] -> pixels [N, 3, H, W] in [-1, 1], as `janus.decode_image_tokens` (same clamp).

    One image per checkpointed decoder call: backward keeps only the latents and one image's activations.
    """
    n, steps, channels = latents.shape
    side = model.config.vq_config.num_patches
    grid = latents.to(model.dtype).view(n, side, side, channels).permute(0, 3, 1, 2)  # [N, E, h, w]
    images = [
        checkpoint(_decode_latents, model, grid[i : i + 1], use_reentrant=False, determinism_check="none")
        for i in range(n)
    ]
    return torch.cat(images).float().clamp(-1.0, 1.0)  # [N, 3, H, W]


def straight_through_pixels(
    model: JanusForConditionalGeneration,
    batch: GenerationBatch,
    image_tokens: torch.LongTensor,
    *,
    cfg_weight: float | None,
    temperature: float = 1.0,
    tau: float = 1.0,
) -> torch.Tensor:
    """Pixels [N, 3, H, W] of the sampled `image_tokens` (forward: exactly the decoded image), differentiable in
    the image policy's logits through straight-through Gumbel-Softmax (`tau` is the Gumbel-Softmax temperature)."""
    latents = straight_through_latents(
        model, batch, image_tokens, cfg_weight=cfg_weight, temperature=temperature, tau=tau
    )
    return decode_latents(model, latents)


__all__ = [
    "conditional_gumbel",
    "decode_latents",
    "straight_through",
    "straight_through_latents",
    "straight_through_pixels",
]
