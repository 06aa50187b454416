"""One task's rollouts on this rank as the loss reads them, and their round trip through TRL's generation buffer.

TRL buffers, shuffles and splits a flat dict of tensors with N rows first; `TaskBatch.flatten` writes one task's
fields as `"<task>/<field>"` (the backbone's record as `"<task>/record/<key>"`) and `from_flat` reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from backbones import Rollout

GENERATE = "generate"
UNDERSTAND = "understand"
# Rollout order: images first, so understanding rows can be about the images generated in their own row (UniRL).
TASKS: tuple[str, ...] = (GENERATE, UNDERSTAND)
_RECORD = "record"
_ROLLOUT_FIELDS = ("completion_ids", "completion_mask", "sampling_logps")


@dataclass
class TaskBatch:
    """A task's rollout (N rows, L actions) plus what the trainer adds: advantages, old/ref log-probs, token count."""

    rollout: Rollout
    advantages: torch.Tensor | None = None  # [N]
    old_logps: torch.Tensor | None = None  # [N, L] when the policy moves between rollout and use
    ref_logps: torch.Tensor | None = None  # [N, L] when beta > 0
    step_tokens: torch.Tensor | None = None  # scalar: counted actions of the generation batch over all ranks

    @property
    def completion_mask(self) -> torch.Tensor:
        return self.rollout.completion_mask

    def _extras(self) -> dict[str, torch.Tensor | None]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rollout"}

    def flatten(self, task: str) -> dict[str, torch.Tensor | None]:
        """`{"<task>/<field>": tensor}`, the shape TRL buffers and splits (scalars are kept whole by its split)."""
        flat = {f"{task}/{_RECORD}/{key}": value for key, value in self.rollout.record.items()}
        flat.update({f"{task}/{name}": getattr(self.rollout, name) for name in _ROLLOUT_FIELDS})
        flat.update({f"{task}/{name}": value for name, value in self._extras().items()})
        return flat

    @classmethod
    def from_flat(cls, task: str, flat: dict) -> TaskBatch:
        """Inverse of `flatten` (keys of other tasks are ignored)."""
        head = f"{task}/{_RECORD}/"
        record = {key[len(head) :]: value for key, value in flat.items() if key.startswith(head)}
        rollout = Rollout(**{name: flat.get(f"{task}/{name}") for name in _ROLLOUT_FIELDS}, record=record)
        extras = {f.name: flat.get(f"{task}/{f.name}") for f in fields(cls) if f.name != "rollout"}
        return cls(rollout, **extras)

    def rows(self, index: slice) -> TaskBatch:
        """The same batch restricted to rows `index` (scalars kept)."""

        def take(value):
            return value[index] if isinstance(value, torch.Tensor) and value.ndim else value

        return TaskBatch(self.rollout.rows(index), **{k: take(v) for k, v in self._extras().items()})


def pad_rollout(rollout: Rollout, length: int, pad_id: int) -> None:
    """Right-pad a rollout's actions (ids, mask, sampler log-probs) to `length`, in place.

    Every rank must score completions of the same length: the log-prob head runs in chunks of positions and ZeRO-3
    all-gathers parameters per module call, so different lengths would desynchronise the ranks.
    """
    ids, mask = rollout.completion_ids, rollout.completion_mask
    extra = length - ids.shape[1]
    if extra <= 0:
        return
    rollout.completion_ids = torch.cat([ids, ids.new_full((ids.shape[0], extra), pad_id)], dim=1)
    rollout.completion_mask = torch.cat([mask, mask.new_zeros((mask.shape[0], extra))], dim=1)
    if rollout.sampling_logps is not None:
        rollout.sampling_logps = torch.nn.functional.pad(rollout.sampling_logps, (0, extra))
