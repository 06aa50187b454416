"""Per-token log-probs of sampled answer and image tokens, with grad, for the GRPO loss (and the old/ref policies).

One forward over prompt + completion, then the head (text `lm_head` or the image generation head) on chunks of
positions: each chunk's float32 logits give `logit[token] - logsumexp(logits)`, so only [N, chunk, V] float32 logits
exist at a time. With grad on, every chunk runs under activation checkpointing, so backward recomputes one chunk at
a time; no full-vocabulary log-softmax is ever kept for all positions.

Under DeepSpeed ZeRO-3 every call of the head module gathers its weight (the Janus-Pro text head is 0.42 GB in
bf16), and per-chunk calls under checkpointing gather it three times per chunk (forward, recompute, backward).
There the head runs once over all positions (logits kept in the model dtype) and only the float32 log-softmax is
chunked: one gather in the forward and one in the backward, for [N, L, V] logits in bf16 held until backward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch.utils.checkpoint import checkpoint

from janus.forward import cfg_mix, position_ids_from_mask, understanding_embeddings, uses_uncond

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration

    from janus.processor import GenerationBatch, UnderstandingBatch

# Float32 logit elements materialised per chunk (2**25 = 128 MiB); the chunk length follows from N and V.
LOGIT_CHUNK_ELEMENTS = 2**25


def _chunk_logps(
    head: Callable[[torch.Tensor], torch.Tensor] | None,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    targets: torch.LongTensor,
    cfg_weight: float | None,
    temperature: float,
) -> torch.Tensor:
    """Log-prob of `targets` [N, C] under softmax(cfg_mix(cond, uncond) / T) from hidden states [N, C, D] passed
    through `head`, or (head None) from logits [N, C, V] the head already produced."""
    cond_logits = head(cond) if head is not None else cond  # [N, C, V]
    uncond_logits = (head(uncond) if head is not None else uncond) if uncond is not None else None
    logits = cfg_mix(cond_logits, uncond_logits, cfg_weight) / temperature  # [N, C, V] float32
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)


def _is_zero3_partitioned(head: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Whether `head` holds DeepSpeed ZeRO-3 parameters (tagged `ds_id`): then every call gathers its weights."""
    return isinstance(head, torch.nn.Module) and any(hasattr(p, "ds_id") for p in head.parameters())


def gathered_logps(
    head: Callable[[torch.Tensor], torch.Tensor],
    cond_hidden: torch.Tensor,
    targets: torch.LongTensor,
    *,
    vocab_size: int,
    uncond_hidden: torch.Tensor | None = None,
    cfg_weight: float | None = None,
    temperature: float = 1.0,
    single_head_call: bool | None = None,
) -> torch.Tensor:
    """Memory-bounded log-probs of `targets` [N, L] from hidden states [N, L, D] (see the module docstring).

    `single_head_call`: run the head once over all positions and chunk only the log-softmax (default: exactly when
    the head is ZeRO-3-partitioned, where each head call is an all-gather of its weights); else per chunk.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0 (use the sampling temperature, 1.0 by default).")
    n, length = targets.shape
    chunk = max(1, LOGIT_CHUNK_ELEMENTS // max(1, n * vocab_size * (2 if uncond_hidden is not None else 1)))
    if single_head_call is None:
        single_head_call = _is_zero3_partitioned(head)
    if single_head_call:
        cond_hidden = head(cond_hidden)  # [N, L, V] in the model dtype: one gather of the head's weights
        uncond_hidden = head(uncond_hidden) if uncond_hidden is not None else None
    chunk_head = None if single_head_call else head
    parts = []
    for start in range(0, length, chunk):
        window = slice(start, start + chunk)
        args = (
            chunk_head,
            cond_hidden[:, window],
            uncond_hidden[:, window] if uncond_hidden is not None else None,
            targets[:, window],
            cfg_weight,
            temperature,
        )
        if torch.is_grad_enabled() and cond_hidden.requires_grad:
            # determinism_check="none": under ZeRO-3 the recompute sees released (shape-[0]) weights, which trips
            # torch's metadata check although ZeRO-3 gathers them again for the backward and gradients are right.
            parts.append(checkpoint(_chunk_logps, *args, use_reentrant=False, determinism_check="none"))
        else:
            parts.append(_chunk_logps(*args))
    return torch.cat(parts, dim=1)  # [N, L]


def answer_token_logps(
    model: JanusForConditionalGeneration,
    batch: UnderstandingBatch,
    completion_ids: torch.LongTensor,
    completion_mask: torch.Tensor,
    temperature: float = 1.0,
    features: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-probs [N, L] of `completion_ids` [N, L] after the image + question prompt (left-padded, T tokens).

    Image features at the placeholder positions, text embeddings elsewhere, one forward; the text head's logits
    divided by `temperature` (the sampling temperature, as TRL does). Entries where `completion_mask` is 0 are
    meaningless; mask them in the loss. `features` [N, P, D]: precomputed `janus.image_features` of the pixels
    (reused from the rollout while the vision tower and aligner are frozen; recompute when they train).
    """
    prompt_len = batch.input_ids.shape[1]
    length = completion_ids.shape[1]
    embeds = torch.cat(
        [
            understanding_embeddings(model, batch.input_ids, batch.pixel_values, features),  # [N, T, D]
            model.get_input_embeddings()(completion_ids),  # [N, L, D]
        ],
        dim=1,
    )
    mask = torch.cat([batch.attention_mask.long(), completion_mask.long()], dim=1)  # [N, T + L]
    hidden = model.model.language_model(
        inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids_from_mask(mask), use_cache=False
    ).last_hidden_state
    # The state at position t predicts token t + 1: positions T-1 .. T+L-2 predict the completion.
    hidden = hidden[:, prompt_len - 1 : prompt_len + length - 1]  # [N, L, D]
    return gathered_logps(
        model.lm_head,
        hidden,
        completion_ids,
        vocab_size=model.config.text_config.vocab_size,
        temperature=temperature,
    )


def image_hidden_states(
    model: JanusForConditionalGeneration, batch: GenerationBatch, image_tokens: torch.LongTensor, with_uncond: bool
) -> torch.Tensor:
    """Hidden states [R, I, D] that predict `image_tokens` [N, I]; R = 2N (cond rows, then uncond) or N.

    One forward over [prompt embeddings, generation embeddings of tokens[:-1]] (teacher forcing).
    """
    prompt_len = batch.input_ids.shape[1]
    steps = image_tokens.shape[1]
    copies = 2 if with_uncond else 1
    row_ids = torch.cat([batch.input_ids, batch.uncond_input_ids]) if with_uncond else batch.input_ids  # [R, T]
    embeds = torch.cat(
        [
            model.get_input_embeddings()(row_ids),  # [R, T, D]
            model.prepare_embeddings_for_image_generation(image_tokens[:, :-1].repeat(copies, 1)),  # [R, I-1, D]
        ],
        dim=1,
    )
    mask = batch.attention_mask.long().repeat(copies, 1)
    mask = torch.cat([mask, mask.new_ones(mask.shape[0], steps - 1)], dim=1)  # [R, T + I - 1]
    return model.model.language_model(
        inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids_from_mask(mask), use_cache=False
    ).last_hidden_state[:, prompt_len - 1 :]  # [R, I, D]


def image_token_logps(
    model: JanusForConditionalGeneration,
    batch: GenerationBatch,
    image_tokens: torch.LongTensor,
    *,
    cfg_weight: float | None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Log-probs [N, I] of `image_tokens` [N, I] after the generation prompt (left-padded, ends with boi).

    One forward over [prompt embeddings, generation embeddings of tokens[:-1]]; the generation head on the I
    hidden states that predict the tokens. Which policy distribution is scored:
    - `cfg_weight=None`: conditional-only (cheap, what T2I-R1 used);
    - `cfg_weight=w`: the CFG-mixed `uncond + w * (cond - uncond)` that sampled the tokens; the conditional and
      unconditional prompts run stacked in the same forward (w = 1 equals conditional-only and skips uncond).
    Old, new and reference log-probs must use the same definition.
    """
    n = batch.input_ids.shape[0]
    with_uncond = uses_uncond(cfg_weight)
    hidden = image_hidden_states(model, batch, image_tokens, with_uncond)  # [R, I, D]
    return gathered_logps(
        model.model.generation_head,
        hidden[:n],
        image_tokens,
        vocab_size=model.config.vq_config.num_embeddings,
        uncond_hidden=hidden[n:] if with_uncond else None,
        cfg_weight=cfg_weight,
        temperature=temperature,
    )


__all__ = ["LOGIT_CHUNK_ELEMENTS", "answer_token_logps", "gathered_logps", "image_hidden_states", "image_token_logps"]
