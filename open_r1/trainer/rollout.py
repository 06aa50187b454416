"""Rollout helpers of PairGRPO: dataset rows -> pair rows (the one place the dataset's columns are read), reward
scoring per task, zero-std groups.

Kept apart from the trainer class so each piece is a small function; no trainer state here.
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from data_tools.image_io import open_rgb
from open_r1.logs import warn_once
from rewards import combine_rewards

logger = logging.getLogger(__name__)


@dataclass
class PairRows:
    """The fields PairGRPO reads from one local generation batch of dataset rows (one row per rollout)."""

    questions: list[str]  # understanding user turns, already templated and truncated
    raw_questions: list[str]  # the pair's question as stored (options are parsed from it by the rewards)
    answers: list[str]  # gold answers A_u
    und_images: list[Image.Image | None]  # None: the row asks about its own generated image
    captions: list[str]  # generation prompts C_g
    similarity: torch.Tensor  # [N] float, NaN when absent
    is_aligned: torch.Tensor  # [N] bool
    own_image: torch.Tensor  # [N] bool: the question is about the image generated in this row (UniRL-style rows)
    image_questions: list[str]  # a question about the row's generated image ("" when none)
    image_answers: list[str | None]  # its gold answer (None when there is no question)


def truncate_left(tokenizer, text: str, max_tokens: int | None) -> str:
    """Keep the last `max_tokens` tokens of `text` (TRL's left truncation); `None` keeps everything."""
    if max_tokens is None:
        return text
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    warn_once(
        logger,
        ("prompt_truncated", max_tokens),
        "A prompt of %d tokens was truncated to max_prompt_length=%d (its last tokens kept); warned once, later "
        "prompts longer than that are truncated silently.",
        len(ids),
        max_tokens,
    )
    return tokenizer.decode(ids[-max_tokens:], skip_special_tokens=False)


def load_rgb(paths: Sequence[str]) -> list[Image.Image | None]:
    """Open each image once (rows of a pair repeat the same path `num_generations` times).

    An empty path (a UniRL self row: its question is about the image generated in its row) gives None; the backbone
    answers such a row about the image generated in it.
    """
    cache: dict[str, Image.Image | None] = {"": None}
    for path in paths:
        if path not in cache:
            cache[path] = open_rgb(path)
    return [cache[p] for p in paths]


def pair_rows(rows: list[dict], tokenizer, template: str, max_prompt_length: int | None) -> PairRows:
    """Read the pair columns of `open_r1.dataset` rows into tensors/lists (one entry per rollout row)."""
    raw = [r["und_question"] for r in rows]
    similarity = [r.get("similarity") for r in rows]
    return PairRows(
        questions=[truncate_left(tokenizer, template.format(question=q), max_prompt_length) for q in raw],
        raw_questions=raw,
        answers=[r["und_answer"] for r in rows],
        und_images=load_rgb([r["und_image_path"] for r in rows]),
        captions=[truncate_left(tokenizer, r["prompt"], max_prompt_length) for r in rows],
        similarity=torch.tensor([math.nan if s is None else float(s) for s in similarity], dtype=torch.float32),
        is_aligned=torch.tensor([r.get("pair_type") == "aligned" for r in rows], dtype=torch.bool),
        own_image=torch.tensor([bool(r.get("own_image", False)) for r in rows], dtype=torch.bool),
        image_questions=[r.get("gen_question") or "" for r in rows],
        image_answers=[(r.get("gen_answer") or None) if r.get("gen_question") else None for r in rows],
    )


def score_task(funcs: Sequence, prompts: list[str], completions: list, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Run one task's reward functions and combine them with `rewards.combine_rewards` (weighted, NaN-aware).

    Returns (total [N]: sum_i w_i * r_i over the functions that apply, NaN where none does;
    raw [N, F]: each function's unweighted reward, NaN for None).
    """
    n = len(prompts)
    columns = []
    for func in funcs:
        values = func(prompts, completions, **kwargs)
        if len(values) != n:
            raise ValueError(f"reward {func.name!r} returned {len(values)} values for {n} rollouts; return one each.")
        columns.append([math.nan if v is None else float(v) for v in values])
    raw = torch.tensor(columns, dtype=torch.float32).T  # [N, F]
    total = combine_rewards({func.name: raw[:, i] for i, func in enumerate(funcs)}, funcs)  # [N]
    return total, raw


def frac_zero_std(rewards: torch.Tensor, group_size: int) -> float:
    """Fraction of groups whose (non-NaN) rewards are all identical: those groups give no learning signal."""
    grouped = rewards.view(-1, group_size)  # [B, G]
    lo = torch.where(torch.isnan(grouped), math.inf, grouped).amin(dim=1)
    hi = torch.where(torch.isnan(grouped), -math.inf, grouped).amax(dim=1)
    return ((hi - lo) <= 1e-8).float().mean().item() if grouped.shape[0] else math.nan
