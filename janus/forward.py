"""The Janus language-model forward pieces shared by the samplers, the compiled decode and the log-probs.

One place for each fact: image token count, positions under left padding, the CFG mix, the vision features written
into the prompt, the cached prefill / one-step extend, and the all-ranks stop check. Nothing here draws a token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from transformers import Cache

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration


def num_image_tokens(model: JanusForConditionalGeneration) -> int:
    """Tokens per generated image: the VQ latent grid squared (24 x 24 = 576 for Janus-Pro)."""
    return model.config.vq_config.num_patches**2


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.LongTensor:
    """Positions that ignore left padding: the first real token of every row gets position 0.

    Pad positions get 0 too; they are masked out of attention, so their value does not matter.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # [R, T]


def uses_uncond(cfg_weight: float | None) -> bool:
    """Whether the CFG mix needs the unconditional rows: `uncond + 1 * (cond - uncond) == cond`, so w = 1 does not."""
    return cfg_weight is not None and cfg_weight != 1.0


def cfg_mix(cond_logits: torch.Tensor, uncond_logits: torch.Tensor | None, cfg_weight: float | None) -> torch.Tensor:
    """Classifier-free guidance `uncond + w * (cond - uncond)` in float32 (conditional logits when no uncond)."""
    cond_logits = cond_logits.float()
    if uncond_logits is None:
        return cond_logits
    uncond_logits = uncond_logits.float()
    return uncond_logits + cfg_weight * (cond_logits - uncond_logits)


def image_features(model: JanusForConditionalGeneration, pixel_values: torch.Tensor) -> torch.Tensor:
    """Aligned vision features [N, P, D] of pixel_values [N, 3, S, S] (vision tower + aligner)."""
    dtype = model.get_input_embeddings().weight.dtype
    return model.model.get_image_features(pixel_values.to(dtype)).pooler_output


def understanding_embeddings(
    model: JanusForConditionalGeneration,
    input_ids: torch.LongTensor,
    pixel_values: torch.Tensor,
    features: torch.Tensor | None = None,
) -> torch.Tensor:
    """Text embeddings with the aligned vision features written into the `<image_placeholder>` positions.

    input_ids [N, T] with exactly P placeholders per row, pixel_values [N, 3, S, S] -> [N, T, D]. `features`
    [N, P, D] (from `image_features`) skips the vision tower: reuse them while it and the aligner are frozen.
    """
    embeds = model.get_input_embeddings()(input_ids)  # [N, T, D]
    if features is None:
        features = image_features(model, pixel_values)  # [N, P, D]
    image_mask = input_ids == model.config.image_token_id  # [N, T]
    if int(image_mask.sum()) != features.shape[0] * features.shape[1]:
        raise ValueError(
            f"input_ids hold {int(image_mask.sum())} image placeholders (id {model.config.image_token_id}) but the "
            f"vision tower gave {features.shape[0]} x {features.shape[1]} features; build the batch with "
            "processor.encode_understanding so each row has one expanded image."
        )
    # masked_scatter fills positions in row-major order, so row n receives features[n] in order.
    return embeds.masked_scatter(image_mask.unsqueeze(-1), features.to(embeds.dtype))


def mask_or_none(mask: torch.Tensor) -> torch.Tensor | None:
    """No mask for unpadded rows: same result (causal only), and transformers then skips building a mask each step."""
    return None if bool(mask.all()) else mask


def prefill(
    model: JanusForConditionalGeneration, embeds: torch.Tensor, mask: torch.Tensor, cache: Cache
) -> tuple[torch.Tensor, torch.LongTensor]:
    """Run the prompt through the language model; returns the last hidden state [R, D] and next positions [R, 1]."""
    positions = position_ids_from_mask(mask)  # [R, T]
    hidden = model.model.language_model(
        inputs_embeds=embeds,
        attention_mask=mask_or_none(mask),
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
    ).last_hidden_state[:, -1]
    return hidden, positions[:, -1:] + 1


def extend(
    model: JanusForConditionalGeneration,
    embeds: torch.Tensor,
    mask: torch.Tensor | None,
    positions: torch.LongTensor,
    cache: Cache,
) -> torch.Tensor:
    """One cached step: embeds [R, 1, D] at `positions` [R, 1], `mask` [R, past + 1] or None -> last state [R, D]."""
    return model.model.language_model(
        inputs_embeds=embeds, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True
    ).last_hidden_state[:, -1]


def all_rows_ended(finished: torch.Tensor, sync_ranks: bool) -> bool:
    """Whether every row has produced EOS (with `sync_ranks`: on every rank)."""
    ended = finished.all().to(torch.int32)
    if sync_ranks:
        torch.distributed.all_reduce(ended, op=torch.distributed.ReduceOp.MIN)
    return bool(ended)


__all__ = [
    "all_rows_ended",
    "cfg_mix",
    "extend",
    "image_features",
    "mask_or_none",
    "num_image_tokens",
    "position_ids_from_mask",
    "prefill",
    "understanding_embeddings",
    "uses_uncond",
]
