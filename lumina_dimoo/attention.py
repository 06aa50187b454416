"""The forward Lumina-DiMOO runs: every real token attends to every real token (no causal mask), pads are hidden.

The original code passes no mask at all (Lumina-DiMOO `model/modeling_llada.py` calls SDPA with `attn_mask=None`),
so it only runs batch 1: a right-padded row's real logits move by up to 0.34. A 4D bool mask with pad keys False
gives every row of a batch exactly its batch-1 logits. transformers treats a 2D mask (or none) as causal, so the
mask handed to `LlamaForCausalLM` is always this 4D one.
"""

from __future__ import annotations

import torch


def bidirectional_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Padding mask [B, L] (1 = real token) -> bool [B, 1, L, L]: queries see all real keys.

    Pad keys are hidden from every query; a pad query also sees itself, because an all-False row would make
    attention return NaN there (never read, but NaN poisons gradients through `0 * nan`).
    """
    keys = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, L]
    eye = torch.eye(attention_mask.shape[1], dtype=torch.bool, device=attention_mask.device)  # [L, L]
    return keys | eye


def dimoo_logits(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Logits [B, L, V] of right-padded `input_ids` [B, L] with padding mask [B, L] (the samplers' logits function)."""
    return model(input_ids=input_ids, attention_mask=bidirectional_mask(attention_mask), use_cache=False).logits


def slot_logits_fn(model: torch.nn.Module, attention_mask: torch.Tensor, head_rows: slice | None = None):
    """`fn(ids [B, L], slots [B, N]) -> logits [B, N, V]` for the shared samplers (`backbones.masked_diffusion.AtSlots`):
    the body runs over the whole sequence, the 134548-wide head only at the slots (only its `head_rows`, e.g. the
    image codes, when given: logits [B, N, len(rows)])."""
    mask = bidirectional_mask(attention_mask)

    def at_slots(input_ids: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        hidden = model.model(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state  # [B, L, D]
        picked = hidden.gather(1, slots.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))  # [B, N, D]
        if head_rows is None:
            return model.lm_head(picked)
        return torch.nn.functional.linear(picked, model.lm_head.weight[head_rows])

    return at_slots
