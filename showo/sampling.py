"""Show-o sampling on the shared samplers: images by MaskGIT (`backbones.maskgit_sampler`, schedule "showo", CFG),
answers by plain autoregressive decoding under the understanding mask (showlab/Show-o `Showo.mmu_generate`).

At batch 1 with the same seed both reproduce the original's tokens (tests/showo/test_showo_parity.py); batches
are exact per row through the masks (pads hidden). No KV cache: like the original, each answer step reruns the
whole sequence, which keeps the omni mask the only attention rule.
"""

from __future__ import annotations

import torch

from backbones.masked_diffusion import AtSlots, Canvas, GeneratorArg, SlotSample, TokenSpace
from backbones.maskgit_sampler import MaskGitOptions, sample_maskgit
from showo.tokens import ShowoVocab, mmu_attention_mask, omni_attention_mask, position_ids


def omni_logits_fn(model: torch.nn.Module, vocab: ShowoVocab) -> AtSlots:
    """The samplers' logits function of t2i rows: ids [B, L], slots [B, I] -> logits [B, I, V] under the omni mask,
    the head at the slots only. Positions are 0..L-1 including the left pads, as the original's t2i forward (every
    t2i row has the same width, so pads are part of the layout)."""

    def at_slots(ids: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        mask = omni_attention_mask(ids, vocab)  # [B, 1, L, L]; codes never change it
        hidden = model.showo.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        picked = hidden.gather(1, slots.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))  # [B, I, D]
        return model.showo.lm_head(picked)  # [B, I, V]

    return AtSlots(at_slots)


def image_space(vocab: ShowoVocab) -> TokenSpace:
    """Image slots hold codes: id = image_offset + code, scored over the codebook's logits (not the mask id)."""
    return TokenSpace(vocab.mask_id, offset=vocab.image_offset, size=vocab.codebook_size)


def image_canvas(vocab: ShowoVocab, cond_ids: torch.Tensor, uncond_ids: torch.Tensor | None = None) -> Canvas:
    """The image slots (between <|soi|> and <|eoi|>) of `t2i_ids` rows [B, L]; `uncond_ids` (the null prompt,
    same layout) for CFG. Slots holding the mask id are sampled, others are given (inpainting)."""
    soi = (cond_ids == vocab.special("<|soi|>")).int().argmax(1)  # [B]
    length = cond_ids.shape[1] - 1 - int(soi[0]) - 1  # image tokens between <|soi|> and the final <|eoi|>
    if bool((soi != soi[0]).any()) or length < 1:
        raise ValueError("cond_ids: rows must share one t2i layout (t2i_ids pads every row to the same width).")
    slots = (soi[:, None] + 1 + torch.arange(length, device=cond_ids.device)).contiguous()  # [B, I]
    return Canvas(cond_ids, slots, uncond_ids, None if uncond_ids is None else slots.clone())


def generate_image_tokens(
    model: torch.nn.Module,
    vocab: ShowoVocab,
    cond_ids: torch.Tensor,
    uncond_ids: torch.Tensor | None,
    options: MaskGitOptions,
    generator: GeneratorArg = None,
) -> SlotSample:
    """`Showo.t2i_generate` on the shared MaskGIT sampler: codes [B, I] (+ reveal steps and log-probs).

    `cond_ids`/`uncond_ids` [B, L]: `t2i_ids` rows of the prompts / of empty prompts (needed when
    options.cfg_weight > 0). `options.temperature` scales the re-masking noise only, as in the original."""
    if options.schedule != "showo":
        raise ValueError(f"options.schedule={options.schedule!r}: Show-o images use MaskGitOptions(schedule='showo').")
    if options.cfg_weight > 0 and uncond_ids is None:
        raise ValueError(f"cfg_weight={options.cfg_weight} needs uncond_ids (t2i_ids of empty prompts).")
    canvas = image_canvas(vocab, cond_ids, uncond_ids if options.cfg_weight > 0 else None)
    logits = omni_logits_fn(model, vocab)
    return sample_maskgit(logits, canvas, image_space(vocab), options, generator=generator, uncond_logits_fn=logits)


def top_k_filter(logits: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """logits [B, V] with everything below the k-th largest set to -inf (ties kept, as the original)."""
    if top_k is None:
        return logits
    kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # [B, 1]
    return logits.masked_fill(logits < kth, float("-inf"))


@torch.no_grad()
def generate_answer_tokens(
    model: torch.nn.Module,
    vocab: ShowoVocab,
    prompt_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    top_k: int | None = 1,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`Showo.mmu_generate` batched: answer ids [B, T] (T <= max_new_tokens) after left-padded `mmu_ids` rows.

    Each step draws from softmax(top_k(logits / temperature)) over the whole vocabulary (the original does not
    restrict it to text) with `torch.multinomial` (global RNG when `generator` is None, as the original); top_k 1
    is the demo's greedy. A row stops after <|eot|> and is padded with [PAD]; decoding ends when all rows stop."""
    if temperature <= 0 or (top_k is not None and top_k < 1) or max_new_tokens < 1:
        raise ValueError(
            f"temperature={temperature} must be > 0 (use top_k=1 for greedy), top_k={top_k} >= 1 or None, "
            f"max_new_tokens={max_new_tokens} >= 1."
        )
    done = torch.zeros(len(prompt_ids), dtype=torch.bool, device=prompt_ids.device)
    ids, pad, answer = prompt_ids, prompt_ids == vocab.pad_id, []  # pads: the prompt's, and after a row's stop
    for _ in range(max_new_tokens):
        out = model(
            input_ids=ids, attention_mask=mmu_attention_mask(ids, vocab, pad),
            position_ids=position_ids(ids, vocab, pad), use_cache=False,
        )  # fmt: skip
        probs = top_k_filter(out.logits[:, -1] / temperature, top_k).softmax(-1)  # [B, V]
        token = torch.multinomial(probs, 1, generator=generator)[:, 0]  # [B]
        token = token.masked_fill(done, vocab.pad_id)
        answer.append(token)
        ids, pad = torch.cat([ids, token[:, None]], dim=1), torch.cat([pad, done[:, None]], dim=1)
        done = done | (token == vocab.eos_id)
        if bool(done.all()):
            break
    return torch.stack(answer, dim=1)


__all__ = [
    "generate_answer_tokens",
    "generate_image_tokens",
    "image_canvas",
    "image_space",
    "omni_logits_fn",
    "top_k_filter",
]
