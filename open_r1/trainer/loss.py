"""PairGRPO's loss math, pure tensors: the clipped GRPO surrogate (+ KL) per token and its normalisation.

No trainer state and no collectives here: the trainer passes the token count of the whole optimizer step (gathered
over ranks) in, and reduces the metric totals (`masked_totals`) itself. Table-tested in tests/open_r1/test_loss.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# "dapo": token sum / tokens of the whole optimizer step over all ranks (TRL's `dapo` normaliser, its default);
# "grpo": mean over sequences of each sequence's token mean, per micro-batch.
LOSS_TYPES = ("dapo", "grpo")


@dataclass
class SurrogateTerms:
    """Per-token pieces of one task's objective; all [N, L]."""

    per_token_loss: torch.Tensor
    ratio: torch.Tensor
    is_clipped: torch.Tensor  # bool: the clip bound decided the term
    per_token_kl: torch.Tensor | None


def clipped_surrogate(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    *,
    epsilon_low: float,
    epsilon_high: float,
    ref_logps: torch.Tensor | None = None,
    beta: float = 0.0,
) -> SurrogateTerms:
    """GRPO's per-token loss `-min(r A, clip(r, 1-e_low, 1+e_high) A) + beta * KL` (PairUni §3.2, beta = 0 there).

    logps / old_logps / ref_logps: [N, L] log-probs of the sampled tokens under the current, the sampling and the
    reference policy; advantages: [N], one per rollout. KL is the k3 estimator `exp(ref - new) - (ref - new) - 1`.
    """
    adv = advantages.unsqueeze(1)  # [N, 1]
    ratio = torch.exp(logps - old_logps)  # [N, L]
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    per_token_loss = -torch.min(ratio * adv, clipped * adv)
    per_token_kl = None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError(f"beta={beta} needs ref_logps (the reference model's log-probs of the same tokens).")
        delta = ref_logps - logps
        per_token_kl = torch.exp(delta) - delta - 1
        per_token_loss = per_token_loss + beta * per_token_kl
    is_clipped = ((ratio < 1 - epsilon_low) & (adv < 0)) | ((ratio > 1 + epsilon_high) & (adv > 0))
    return SurrogateTerms(per_token_loss, ratio, is_clipped, per_token_kl)


def normalise_loss(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    *,
    step_tokens: torch.Tensor | float | None = None,
    num_processes: int = 1,
    accumulation_steps: int = 1,
) -> torch.Tensor:
    """One micro-batch's scalar loss, scaled so that the optimizer step's gradient is the wanted mean.

    mask: [N, L], 1 on tokens that count (answer tokens up to EOS; all image tokens).
    - "dapo": `sum(loss * mask) / (step_tokens / num_processes)`, `step_tokens` = the task's counted tokens of
      the whole optimizer step summed over ranks. Ranks' gradients are averaged and micro-batches summed, so every
      token of the step weighs 1 / step_tokens whatever the length of the micro-batch it sits in.
    - "grpo": mean over sequences of the per-sequence token mean, divided by `accumulation_steps`.
    """
    mask = mask.to(per_token_loss.dtype)
    if loss_type == "dapo":
        if step_tokens is None:
            raise ValueError(
                "loss_type='dapo' needs step_tokens (the task's tokens of the optimizer step, all ranks)."
            )
        step_tokens = torch.as_tensor(step_tokens, dtype=per_token_loss.dtype, device=per_token_loss.device)
        return (per_token_loss * mask).sum() / (step_tokens.clamp(min=1.0) / num_processes)
    if loss_type == "grpo":
        per_sequence = (per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)  # [N]
        return per_sequence.mean() / accumulation_steps
    raise ValueError(f"loss_type={loss_type!r} is not supported; use one of {LOSS_TYPES}.")


def masked_totals(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[sum(values * mask), sum(mask)] as one float tensor, so a metric's global mean needs one all-reduce."""
    mask = mask.to(torch.float32)
    return torch.stack([(values.detach().float() * mask).sum(), mask.sum()])


def mean_from_totals(totals: torch.Tensor) -> float:
    """The mean from (possibly rank-summed) `masked_totals`; 0 when nothing counted."""
    return (totals[0] / totals[1].clamp(min=1.0)).item()


__all__ = ["LOSS_TYPES", "SurrogateTerms", "clipped_surrogate", "masked_totals", "mean_from_totals", "normalise_loss"]
