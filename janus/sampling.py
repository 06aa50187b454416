"""Batched, KV-cached rollouts for Janus-Pro (no grad): CFG image-token sampling and answer sampling.

Both samplers only *call* the modules of transformers' `JanusForConditionalGeneration` (never read a `.weight`),
so they run unchanged under DeepSpeed ZeRO-3. Left-padded prompts get an attention mask and explicit position ids,
so every row sees what it would see alone. The forward pieces live in `janus.forward`, token choice in `janus.draw`
(both shared with the compiled decode, `janus.static_decode`); log-probs with grad in `janus.logprobs`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from transformers import DynamicCache

from janus import static_decode
from janus.draw import pick_tokens
from janus.forward import (
    all_rows_ended,
    cfg_mix,
    extend,
    mask_or_none,
    num_image_tokens,
    prefill,
    understanding_embeddings,
    uses_uncond,
)

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration

    from janus.processor import GenerationBatch, UnderstandingBatch

logger = logging.getLogger(__name__)


@dataclass
class ImageSamples:
    """Sampled image tokens and, optionally, their log-probs under the CFG-mixed, temperature-scaled distribution."""

    tokens: torch.LongTensor  # [N, I] VQ codebook ids, I = num_image_tokens(model)
    logps: torch.Tensor | None = None  # [N, I] float32


@dataclass
class AnswerSamples:
    """Sampled answer tokens, right-padded with the pad id; the mask covers tokens up to and including EOS."""

    completion_ids: torch.LongTensor  # [N, L]
    completion_mask: torch.LongTensor  # [N, L] 1 up to and including EOS, 0 after
    logps: torch.Tensor | None = None  # [N, L] float32, 0 where completion_mask is 0


# ---------------------------------------------------------------------------------------------------------------------
# Argument checks and seeds
# ---------------------------------------------------------------------------------------------------------------------


def _check_sampling_args(temperature: float, top_k: int | None, top_p: float = 1.0) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0; use top_k=1 (or do_sample=False) for greedy.")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k} must be >= 1 or None (no top-k filter).")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p={top_p} must be in (0, 1]; 1.0 disables nucleus filtering.")


def image_seed(base_seed: int, prompt_index: int, image_index: int) -> int:
    """Seed of one image's generator, fixed by (base seed, prompt index, image index) alone.

    A hash rather than `base_seed + prompt_index`: with a sum, seed 1's prompt 0 would redraw seed 0's prompt 1.
    63 bits, so it is a valid `torch.Generator.manual_seed` on every device.
    """
    digest = hashlib.sha256(f"{base_seed}/{prompt_index}/{image_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _check_decode(decode: str) -> None:
    if decode not in ("eager", "compiled"):
        raise ValueError(f"decode={decode!r} is unknown; use 'eager' (the reference loop) or 'compiled'.")


def _check_generators(generator: torch.Generator | list[torch.Generator] | None, rows: int) -> None:
    if isinstance(generator, list | tuple) and len(generator) != rows:
        raise ValueError(
            f"generator is a list of {len(generator)} generators but the batch has {rows} rows; pass one "
            "torch.Generator per row (in row order, after any repeat_interleave) or a single generator."
        )


def _generator_rows(
    generator: torch.Generator | list[torch.Generator] | None, start: int, stop: int
) -> torch.Generator | list[torch.Generator] | None:
    """The generators of rows [start, stop): the per-row slice of a list, else the shared generator itself."""
    return list(generator[start:stop]) if isinstance(generator, list | tuple) else generator


# ---------------------------------------------------------------------------------------------------------------------
# Image tokens (CFG)
# ---------------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def sample_image_tokens(
    model: JanusForConditionalGeneration,
    batch: GenerationBatch,
    *,
    cfg_weight: float = 5.0,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
    max_batch_size: int | None = None,
    return_logps: bool = False,
    decode: str = "eager",
) -> ImageSamples:
    """Sample `num_image_tokens(model)` image tokens per prompt with classifier-free guidance.

    Each step runs the conditional and the unconditional rows (2N, stacked) in one KV-cached forward of the
    language model, applies the generation head to the last hidden state, mixes `uncond + cfg_weight * (cond -
    uncond)`, divides by `temperature`, optionally keeps the `top_k` best, samples with `generator` (on the
    model's device), and feeds the sampled token's generation embedding to both rows.

    `generator` is a single generator shared by the batch, or a list with one generator per prompt row: each row
    then draws only from its own generator, so it gets the same tokens whatever else is in the batch and whatever
    `max_batch_size` (a bit slower: one draw per row and step). Only the random stream is made batch-independent:
    the batch's padded length can still move a row's logits by float rounding (~1e-6 in float32), which on rare
    draws picks a neighbouring token. `cfg_weight=1` is the conditional-only distribution;
    the unconditional rows are then skipped (same result, half the work). `max_batch_size` bounds the prompts per
    forward (chunks are sampled one after another, so with a shared generator the draws depend on it).
    `return_logps` gives log-probs of the sampled tokens under the CFG-mixed,
    temperature-scaled distribution before top-k, the quantity `image_token_logps(..., cfg_weight=w)` recomputes.
    `decode="compiled"` runs the steps as one torch.compile'd, fixed-shape step over a preallocated KV cache
    (janus.static_decode; CUDA graphs on CUDA) with the same random draws as the eager reference loop.
    """
    _check_sampling_args(temperature, top_k)
    _check_decode(decode)
    n = batch.input_ids.shape[0]
    _check_generators(generator, n)
    chunk = n if max_batch_size is None else max_batch_size
    if chunk < 1:
        raise ValueError(f"max_batch_size={max_batch_size} must be >= 1 or None (all prompts in one forward).")
    logger.debug("Sampling %d x %d image tokens (cfg %s, chunks of %d)", n, num_image_tokens(model), cfg_weight, chunk)
    parts = [
        _sample_image_chunk(
            model,
            batch.input_ids[start : start + chunk],
            batch.uncond_input_ids[start : start + chunk],
            batch.attention_mask[start : start + chunk],
            cfg_weight=cfg_weight,
            temperature=temperature,
            top_k=top_k,
            generator=_generator_rows(generator, start, start + chunk),
            return_logps=return_logps,
            decode=decode,
        )
        for start in range(0, n, chunk)
    ]
    tokens = torch.cat([p.tokens for p in parts])
    logps = torch.cat([p.logps for p in parts]) if return_logps else None
    return ImageSamples(tokens=tokens, logps=logps)


def _sample_image_chunk(
    model: JanusForConditionalGeneration,
    input_ids: torch.LongTensor,
    uncond_input_ids: torch.LongTensor,
    attention_mask: torch.Tensor,
    *,
    cfg_weight: float,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | list[torch.Generator] | None,
    return_logps: bool,
    decode: str,
) -> ImageSamples:
    n = input_ids.shape[0]
    steps = num_image_tokens(model)
    with_uncond = uses_uncond(cfg_weight)
    copies = 2 if with_uncond else 1
    # Rows [cond_0..cond_{n-1}, uncond_0..uncond_{n-1}]; the uncond prompt shares its cond row's padding.
    row_ids = torch.cat([input_ids, uncond_input_ids]) if with_uncond else input_ids  # [R, T], R = copies * n
    mask = attention_mask.long().repeat(copies, 1)  # [R, T]
    options = dict(
        n=n,
        steps=steps,
        cfg_weight=cfg_weight,
        temperature=temperature,
        top_k=top_k,
        with_uncond=with_uncond,
        generator=generator,
        return_logps=return_logps,
    )
    if decode == "eager":
        tokens, logps = _eager_image_loop(model, row_ids, mask, **options)
    else:
        tokens, logps = static_decode.with_eager_fallback(
            lambda: static_decode.decode_images(model, row_ids, mask, **options),
            lambda: _eager_image_loop(model, row_ids, mask, **options),
            generator,
        )
    return ImageSamples(tokens=tokens, logps=logps)


def _eager_image_loop(
    model: JanusForConditionalGeneration,
    row_ids: torch.LongTensor,
    mask: torch.Tensor,
    *,
    n: int,
    steps: int,
    cfg_weight: float | None,
    temperature: float,
    top_k: int | None,
    with_uncond: bool,
    generator: torch.Generator | list[torch.Generator] | None,
    return_logps: bool,
) -> tuple[torch.LongTensor, torch.Tensor | None]:
    """The reference loop: image tokens [N, I] (and log-probs) for the stacked rows `row_ids` [R, T]."""
    prompt_len = row_ids.shape[1]
    copies = 2 if with_uncond else 1
    # Preallocate the whole mask once (step i attends to the first T + i columns); none is needed without padding.
    full_mask = mask_or_none(torch.cat([mask, mask.new_ones(mask.shape[0], steps)], dim=1))  # [R, T + I]
    # A growing DynamicCache, as the original loop (janus.static_decode is the preallocated, compiled variant).
    cache = DynamicCache(config=model.model.language_model.config)
    hidden, next_positions = prefill(model, model.get_input_embeddings()(row_ids), mask, cache)  # [R, D], [R, 1]

    tokens = row_ids.new_zeros(n, steps)  # [N, I]
    logps = torch.zeros(n, steps, device=row_ids.device) if return_logps else None
    for step in range(steps):
        logits = model.model.generation_head(hidden)  # [R, V]
        mixed = cfg_mix(logits[:n], logits[n:] if with_uncond else None, cfg_weight) / temperature  # [N, V]
        step_tokens, step_logps = pick_tokens(
            mixed, do_sample=True, top_k=top_k, top_p=1.0, generator=generator, return_logps=return_logps
        )
        tokens[:, step] = step_tokens
        if return_logps:
            logps[:, step] = step_logps
        if step == steps - 1:
            break  # the last token's embedding would predict nothing
        # Both rows of a pair continue from the same sampled token.
        step_embeds = model.prepare_embeddings_for_image_generation(step_tokens.repeat(copies).unsqueeze(-1))
        step_mask = full_mask[:, : prompt_len + step + 1] if full_mask is not None else None
        hidden = extend(model, step_embeds, step_mask, next_positions + step, cache)
    return tokens, logps


# ---------------------------------------------------------------------------------------------------------------------
# Answer tokens (understanding)
# ---------------------------------------------------------------------------------------------------------------------


def _config_token_id(model: JanusForConditionalGeneration, name: str) -> int | None:
    """`name` (e.g. "eos_token_id") from the generation config, else the text config; the first id of a list."""
    for config in (model.generation_config, model.config.text_config):
        found = getattr(config, name, None)
        if isinstance(found, list):
            found = found[0] if found else None
        if found is not None:
            return int(found)
    return None


def _answer_token_ids(model: JanusForConditionalGeneration, eos: int | None, pad: int | None) -> tuple[int, int]:
    """(eos, pad) ids: the given ones, else the model's configs; pad falls back to EOS."""
    eos = eos if eos is not None else _config_token_id(model, "eos_token_id")
    if eos is None:
        raise ValueError("eos_token_id is not set on the model; pass eos_token_id=processor.special.eos_id.")
    pad = pad if pad is not None else _config_token_id(model, "pad_token_id")
    return eos, eos if pad is None else pad


def _is_zero3_multiprocess(model: JanusForConditionalGeneration) -> bool:
    """DeepSpeed ZeRO-3 tags its partitioned parameters with `ds_id`."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return distributed and torch.distributed.get_world_size() > 1 and hasattr(next(model.parameters()), "ds_id")


@torch.no_grad()
def sample_answer_tokens(
    model: JanusForConditionalGeneration,
    batch: UnderstandingBatch,
    *,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int | None = None,
    do_sample: bool = True,
    generator: torch.Generator | list[torch.Generator] | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    return_logps: bool = False,
    sync_ranks: bool | None = None,
    features: torch.Tensor | None = None,
    decode: str = "eager",
) -> AnswerSamples:
    """Sample answers to image + question prompts with a KV cache; stops once every row has produced EOS.

    The image features (vision tower + aligner) replace the placeholder embeddings. `do_sample=False` is greedy.
    `generator` is one generator for the batch or a list with one per row (each row's answer then depends only on
    its own generator and prompt, not on the batch it is in; one draw per row and step).
    `eos_token_id`/`pad_token_id` default to the model's generation config (pass `processor.special.eos_id` /
    `.pad_id` to be explicit). `return_logps` gives log-softmax(logits / temperature) of each chosen token before
    top-k/top-p, the quantity `answer_token_logps` recomputes. `sync_ranks` (default: on for a DeepSpeed ZeRO-3
    model in a multi-process run) keeps every rank stepping until all ranks' rows have ended, because each sharded
    forward is a collective and an early stop on one rank would hang the others. `features`: precomputed
    `image_features` of the batch's pixels (the vision tower is then not run).
    `decode="compiled"`: the torch.compile'd fixed-shape step of janus.static_decode (same draws as eager; the
    host checks for "every row ended" only every few steps, and the extra steps are trimmed off).
    """
    _check_sampling_args(temperature, top_k, top_p)
    _check_decode(decode)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1.")
    eos_token_id, pad_token_id = _answer_token_ids(model, eos_token_id, pad_token_id)
    sync_ranks = _is_zero3_multiprocess(model) if sync_ranks is None else sync_ranks

    mask = batch.attention_mask.long()  # [N, T]
    n = mask.shape[0]
    _check_generators(generator, n)
    embeds = understanding_embeddings(model, batch.input_ids, batch.pixel_values, features)  # [N, T, D]
    options = dict(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        do_sample=do_sample,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        generator=generator,
        return_logps=return_logps,
        sync_ranks=sync_ranks,
    )
    if decode == "eager":
        ids, keep, logps = _eager_answer_loop(model, embeds, mask, **options)
    else:
        ids, keep, logps = static_decode.with_eager_fallback(
            lambda: static_decode.decode_answers(model, embeds, mask, **options),
            lambda: _eager_answer_loop(model, embeds, mask, **options),
            generator,
        )
    return AnswerSamples(completion_ids=ids, completion_mask=keep, logps=logps)


def _eager_answer_loop(
    model: JanusForConditionalGeneration,
    embeds: torch.Tensor,
    mask: torch.Tensor,
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float,
    do_sample: bool,
    eos_token_id: int,
    pad_token_id: int,
    generator: torch.Generator | list[torch.Generator] | None,
    return_logps: bool,
    sync_ranks: bool,
) -> tuple[torch.LongTensor, torch.LongTensor, torch.Tensor | None]:
    """The reference loop: (completion_ids, completion_mask, logps) [N, L] after prompt embeddings [N, T, D]."""
    n = mask.shape[0]
    full_mask = mask_or_none(torch.cat([mask, mask.new_ones(n, max_new_tokens)], dim=1))  # [N, T + L_max]
    cache = DynamicCache(config=model.model.language_model.config)
    hidden, next_positions = prefill(model, embeds, mask, cache)  # [N, D], [N, 1]

    finished = torch.zeros(n, dtype=torch.bool, device=mask.device)
    ids, keep, logps = [], [], []
    for step in range(max_new_tokens):
        logits = model.lm_head(hidden).float() / temperature  # [N, V]
        tokens, step_logps = pick_tokens(
            logits, do_sample=do_sample, top_k=top_k, top_p=top_p, generator=generator, return_logps=return_logps
        )
        tokens = tokens.masked_fill(finished, pad_token_id)
        ids.append(tokens)
        keep.append(~finished)
        if return_logps:
            logps.append(step_logps.masked_fill(finished, 0.0))
        finished = finished | (tokens == eos_token_id)
        if all_rows_ended(finished, sync_ranks) or step == max_new_tokens - 1:
            break
        step_embeds = model.get_input_embeddings()(tokens.unsqueeze(-1))  # [N, 1, D]
        step_mask = full_mask[:, : mask.shape[1] + step + 1] if full_mask is not None else None
        hidden = extend(model, step_embeds, step_mask, next_positions + step, cache)
    return (
        torch.stack(ids, dim=1),  # [N, L]
        torch.stack(keep, dim=1).long(),  # [N, L]
        torch.stack(logps, dim=1) if return_logps else None,
    )


__all__ = ["AnswerSamples", "ImageSamples", "image_seed", "sample_answer_tokens", "sample_image_tokens"]
