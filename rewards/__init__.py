"""Reward registry: config names -> weighted callables with TRL's reward signature, plus NaN-aware combination.

Each reward is `f(prompts, completions, **kwargs) -> list[float | None]` (None where it does not apply to
a row; TRL turns those into NaN). Understanding rewards read `kwargs["answer"]`, generation rewards read
`kwargs["images"]` ([N, 3, H, W] in [-1, 1]) and use `prompts` as captions. Rewards of different scales
are never summed unweighted: `combine_rewards` applies each reward's weight (README, "Rewards").
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rewards.reward_demo import demo_color
from rewards.reward_toy import toy_geneval
from rewards.reward_understand import accuracy_reward, completion_text, extract_choice, format_reward
from rewards.reward_unirl import AnswerJudge, self_check_reward, unirl_answer_reward, unirl_image_reward

if TYPE_CHECKING:
    from rewards.reward_generate import HPSv21Scorer

__all__ = [
    "JUDGED_REWARDS",
    "REWARD_NAMES",
    "REWARD_TASKS",
    "RewardFunc",
    "build_reward_funcs",
    "combine_rewards",
    "extract_choice",
    "nan_mean_std",
    "reward_stats",
]

logger = logging.getLogger(__name__)

# name -> task whose rollouts it scores. "demo_color" and "toy_geneval" are DEMO ONLY (rewards/reward_demo.py,
# rewards/reward_toy.py).
REWARD_TASKS: dict[str, str] = {
    "accuracy": "understand",
    "format": "understand",
    "hps_v2.1": "generate",
    "demo_color": "generate",
    "toy_geneval": "generate",
    # UniRL (rewards/reward_unirl.py): answer correctness on the model's own images; `unirl_image` and
    # `self_check` read kwargs["judge_answers"], ["question"], ["answer"] and ["own_image"].
    "unirl_answer": "understand",
    "unirl_image": "generate",
    # PairUni + UniRL: the policy answers a PairUG generation sample's question about its own image (opt-in).
    "self_check": "generate",
}
# Rewards that read the judge's answers about the generated images: the trainer runs the judge when one is listed.
JUDGED_REWARDS: tuple[str, ...] = ("unirl_image", "self_check")
REWARD_NAMES: tuple[str, ...] = tuple(REWARD_TASKS)

RewardFn = Callable[..., list[float | None]]


class RewardFunc:
    """A named, weighted reward with TRL's signature; `__name__` is the config name so TRL logs it by name.

    Deliberately not an `nn.Module`: TRL treats modules as sequence-classification reward models.
    """

    def __init__(self, name: str, task: str, fn: RewardFn, weight: float = 1.0) -> None:
        self.name = name
        self.__name__ = name
        self.task = task
        self.fn = fn
        self.weight = float(weight)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        rewards = self.fn(prompts, completions, **kwargs)
        if len(rewards) != len(prompts):
            raise RuntimeError(f"reward {self.name!r} returned {len(rewards)} values for {len(prompts)} rows")
        return rewards

    def __repr__(self) -> str:
        return f"RewardFunc(name={self.name!r}, task={self.task!r}, weight={self.weight})"


def _hps_reward(scorer: HPSv21Scorer) -> RewardFn:
    def hps_v21(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        images = kwargs.get("images")
        if images is None:
            raise ValueError("images: hps_v2.1 needs images=Tensor[N, 3, H, W] in [-1, 1] (the decoded generations)")
        captions = [completion_text(prompt) for prompt in prompts]
        return scorer.score(images, captions).tolist()

    return hps_v21


def build_reward_funcs(
    names: Sequence[str],
    weights: Sequence[float] | None = None,
    *,
    hps_checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    hps_dtype: torch.dtype = torch.float32,
    hps_batch_size: int = 16,
    hps_model_name: str = "ViT-H-14",
    hps_precision: str = "fp32",
    answer_judge: AnswerJudge | None = None,
) -> list[RewardFunc]:
    """Reward callables for config `names` (see `REWARD_NAMES`), with `weights` (default 1.0 each).

    `hps_v2.1` loads its checkpoint here, once (`hps_*` arguments go to `HPSv21Scorer`): call this on every
    rank, ideally before building the DeepSpeed engine (it is safe inside `zero.Init` too). `answer_judge`
    (e.g. `rewards.answer_judge.LLMAnswerJudge`) grades free-form gold answers of the `unirl_*` rewards when
    normalised matching fails.
    """
    unknown = [name for name in names if name not in REWARD_TASKS]
    if unknown:
        raise ValueError(f"reward_funcs: unknown reward(s) {unknown}; valid names are {list(REWARD_NAMES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"reward_funcs: duplicate names in {list(names)}; list each reward once")
    weights = [1.0] * len(names) if weights is None else list(weights)
    if len(weights) != len(names):
        raise ValueError(
            f"reward_weights: got {len(weights)} weights for {len(names)} rewards {list(names)}; give one per reward"
        )
    if not all(math.isfinite(w) for w in weights):
        raise ValueError(f"reward_weights: all weights must be finite numbers, got {weights}")
    fns: dict[str, Callable[[], RewardFn]] = {
        "accuracy": lambda: accuracy_reward,
        "format": lambda: format_reward,
        "demo_color": lambda: demo_color,
        "unirl_answer": lambda: functools.partial(unirl_answer_reward, llm_judge=answer_judge),
        "unirl_image": lambda: functools.partial(unirl_image_reward, llm_judge=answer_judge),
        "toy_geneval": lambda: toy_geneval,
        "self_check": lambda: functools.partial(self_check_reward, llm_judge=answer_judge),
        "hps_v2.1": lambda: _hps_reward(
            _load_scorer(
                hps_checkpoint,
                device=device,
                dtype=hps_dtype,
                batch_size=hps_batch_size,
                model_name=hps_model_name,
                precision=hps_precision,
            )
        ),
    }
    return [RewardFunc(name, REWARD_TASKS[name], fns[name](), w) for name, w in zip(names, weights, strict=True)]


def _load_scorer(checkpoint: str | Path | None, **scorer_kwargs: Any) -> HPSv21Scorer:
    # Imported here: open_clip takes seconds to import, and most users of this package only parse answers.
    from rewards.reward_generate import HPS_FILENAME, HPS_HUB_REPO, HPSv21Scorer

    if checkpoint is None:
        raise ValueError(
            f"hps_checkpoint: the 'hps_v2.1' reward needs a local path to {HPS_FILENAME} "
            f"(download it from the Hugging Face hub repo {HPS_HUB_REPO}); pass --hps_checkpoint /path/{HPS_FILENAME} "
            "or drop 'hps_v2.1' from --reward_funcs"
        )
    return HPSv21Scorer(checkpoint, **scorer_kwargs)


def _as_tensor(values: torch.Tensor | Sequence[float | None]) -> torch.Tensor:
    """Rewards as float32 with NaN for rows a reward does not apply to."""
    if isinstance(values, torch.Tensor):
        return values.float()
    return torch.tensor([math.nan if v is None else float(v) for v in values], dtype=torch.float32)


def combine_rewards(
    per_func: Mapping[str, torch.Tensor | Sequence[float | None]], funcs: Sequence[RewardFunc]
) -> torch.Tensor:
    """Weighted sum over rewards per row, skipping NaN (not applicable): [N] float32.

    Rows where no reward applies stay NaN (not 0, which would look like a real score); callers must
    not feed them to advantages. Every name in `funcs` must be in `per_func`.
    """
    missing = [f.name for f in funcs if f.name not in per_func]
    if missing:
        raise ValueError(f"per_func: no rewards given for {missing}; compute every reward in funcs")
    columns = [_as_tensor(per_func[f.name]) for f in funcs]
    if not columns:
        raise ValueError("funcs: need at least one reward to combine")
    stacked = torch.stack([c.to(columns[0].device) for c in columns], dim=1)  # [N, F]
    weights = torch.tensor([f.weight for f in funcs], device=stacked.device)  # [F]
    weighted = torch.nan_to_num(stacked, nan=0.0) * weights  # [N, F]
    total = weighted.sum(dim=1)  # [N]
    applicable = ~torch.isnan(stacked).all(dim=1)  # [N]
    if not applicable.all():
        logger.warning("%d of %d rows have no applicable reward (NaN)", int((~applicable).sum()), len(total))
    return torch.where(applicable, total, torch.full_like(total, math.nan))


def nan_mean_std(values: torch.Tensor | Sequence[float | None]) -> tuple[float, float]:
    """Mean and unbiased std (TRL's `nanstd`) of the non-NaN entries; (NaN, NaN) if none, std 0 for one value.

    The one statistic behind every logged reward mean/std (per reward here, per task in the trainer).
    """
    column = _as_tensor(values)
    valid = column[~torch.isnan(column)]
    if valid.numel() == 0:
        return math.nan, math.nan
    return valid.mean().item(), (valid.std().item() if valid.numel() > 1 else 0.0)


def reward_stats(per_func: Mapping[str, torch.Tensor | Sequence[float | None]]) -> dict[str, float]:
    """Raw mean/std of each reward over the rows it applies to: `{"rewards/<name>/mean": ..., ".../std": ...}`.

    Logged per reward, unweighted, so a reward that dominates or collapses is visible (README, "Logging").
    Rewards with no applicable row are reported as NaN; std of a single value is 0 (`nan_mean_std`).
    """
    stats: dict[str, float] = {}
    for name, values in per_func.items():
        mean, std = nan_mean_std(values)
        stats[f"rewards/{name}/mean"], stats[f"rewards/{name}/std"] = mean, std
    return stats
