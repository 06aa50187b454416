"""PairGRPO advantages (PairUni §3.2): group-normalised rewards per task, scaled by a per-pair alignment weight.

Pure tensor functions so they are unit-tested without a trainer. The trainer calls `pair_advantages` on the rewards
gathered from all ranks (`group_advantages` per task, times `pair_weights`), then keeps its own rows (`rank_rows`).
"""

import torch

PAIR_WEIGHTING_MODES = ("sqrt", "linear", "none")


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """GRPO advantages `(r - mean) / (std + eps)` within consecutive groups of `group_size` rollouts.

    Args:
        rewards: `[N]` with N = B * group_size; rows `g*group_size ... (g+1)*group_size - 1` form group g.
            NaN marks a reward that does not apply; it is left out of the group statistics and gets advantage 0.
        group_size: rollouts per group (K_u or K_g).
        scale: divide by the group standard deviation (unbiased, like TRL); False only centres (Dr. GRPO).
        eps: added to the std so a group of identical rewards gets 0, never NaN.

    Returns:
        `[N]` float advantages.
    """
    if rewards.ndim != 1 or group_size < 1 or rewards.numel() % group_size != 0:
        raise ValueError(
            f"rewards must be 1-D with a length divisible by group_size; got shape {tuple(rewards.shape)} and "
            f"group_size={group_size}. Pass one reward per rollout, groups stored consecutively."
        )
    grouped = rewards.float().view(-1, group_size)  # [B, G]
    valid = ~torch.isnan(grouped)
    count = valid.sum(dim=1, keepdim=True)  # [B, 1]
    mean = torch.where(valid, grouped, 0.0).sum(dim=1, keepdim=True) / count.clamp(min=1)
    centred = torch.where(valid, grouped - mean, 0.0)  # [B, G]; NaN rows -> 0
    if scale:
        # Unbiased std over the valid rollouts only; a group with < 2 valid rewards has nothing to compare: std 0.
        var = centred.pow(2).sum(dim=1, keepdim=True) / (count - 1).clamp(min=1)
        centred = centred / (var.sqrt() + eps)
    return centred.view(-1)


def pair_weights(similarity: torch.Tensor, is_aligned: torch.Tensor, mode: str = "sqrt") -> torch.Tensor:
    """Per-pair weight w_p of PairGRPO: 1 for aligned pairs, f(s_p) for retrieved ones (paper default f = sqrt).

    Args:
        similarity: `[B]` image cosine similarity s_p of each pair (ignored, may be NaN, for aligned pairs).
        is_aligned: `[B]` bool, True for aligned pairs (same image on both sides).
        mode: "sqrt" (the paper's choice) -> sqrt(s_p); "linear" -> s_p; "none" -> 1 (ablations).

    Returns:
        `[B]` float weights in [0, 1]; similarity is clamped to [0, 1] first.
    """
    if mode not in PAIR_WEIGHTING_MODES:
        raise ValueError(f"pair weighting mode={mode!r} is not supported; use one of {PAIR_WEIGHTING_MODES}.")
    if similarity.shape != is_aligned.shape or similarity.ndim != 1:
        raise ValueError(
            f"similarity {tuple(similarity.shape)} and is_aligned {tuple(is_aligned.shape)} must be 1-D and match "
            "(one entry per pair)."
        )
    is_aligned = is_aligned.bool()
    bad = torch.isnan(similarity) & ~is_aligned
    if bad.any():
        rows = bad.nonzero().flatten().tolist()
        raise ValueError(
            f"retrieved pairs at rows {rows} have NaN similarity; every retrieved pair needs a `similarity` in [0, 1] "
            "(fix the pair file or mark the pair `pair_type: aligned`)."
        )
    s = torch.nan_to_num(similarity.float(), nan=1.0).clamp(0.0, 1.0)
    if mode == "sqrt":
        weight = s.sqrt()
    elif mode == "linear":
        weight = s
    else:
        weight = torch.ones_like(s)
    return torch.where(is_aligned, torch.ones_like(weight), weight)


def pair_advantages(
    rewards: dict[str, torch.Tensor],
    similarity: torch.Tensor,
    is_aligned: torch.Tensor,
    group_size: int,
    *,
    scale: bool = True,
    weighting: str = "sqrt",
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """PairGRPO advantages of every task: `group_advantages` per task, each times the pair weight w_p.

    rewards: {task: [N]}, N = B * group_size with a pair's rollouts consecutive; similarity / is_aligned: [N] (a
    pair's rows share them). Returns ({task: advantages [N]}, pair weight per row [N]).
    """
    # A pair's rows share its similarity/type: one weight per pair [B], then one value per row [N].
    per_pair = pair_weights(similarity.view(-1, group_size)[:, 0], is_aligned.view(-1, group_size)[:, 0], weighting)
    weights = per_pair.repeat_interleave(group_size)
    advantages = {task: group_advantages(r, group_size, scale=scale) * weights for task, r in rewards.items()}
    return advantages, weights


def rank_rows(gathered: torch.Tensor, rank: int, num_local: int) -> torch.Tensor:
    """This rank's `num_local` rows of a tensor gathered in rank order (accelerate's `gather` concatenates ranks)."""
    if (rank + 1) * num_local > gathered.shape[0]:
        raise ValueError(f"rank {rank} x {num_local} rows is outside the gathered {gathered.shape[0]} rows.")
    return gathered[rank * num_local : (rank + 1) * num_local]
