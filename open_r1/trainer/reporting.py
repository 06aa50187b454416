"""What PairGRPO writes besides checkpoints: sample-image grids, `metrics.jsonl`, a reward-curve PNG, loud warnings,
and one compact console line per logging step.

Grids go to `output_dir/samples/` always and to TensorBoard / W&B when they are in `report_to`. The full metrics go to
`metrics.jsonl` and the trackers; the console gets `ProgressLineCallback`'s line instead of the HF Trainer's dict.
"""

import json
import logging
import math
import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from data_tools.jsonl import atomic_write_text
from open_r1.logs import warn_once

logger = logging.getLogger(__name__)
# Its own logger so the progress line shows at the default (warning) level of the other project loggers.
progress_logger = logging.getLogger("open_r1.progress")

CAPTION_HEIGHT = 28
MIN_CELL = 160  # tiny demo images (32 px) are upscaled so the grid and its captions stay readable


def image_grid(images: list[Image.Image], captions: list[str], columns: int = 4) -> Image.Image:
    """Tile images (same size) in a grid with a short caption strip under each."""
    if not images:
        raise ValueError("image_grid needs at least one image.")
    width, height = images[0].size
    scale = max(1, -(-MIN_CELL // width))  # ceil
    width, height = width * scale, height * scale
    rows = math.ceil(len(images) / columns)
    columns = min(columns, len(images))
    grid = Image.new("RGB", (columns * width, rows * (height + CAPTION_HEIGHT)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, caption) in enumerate(zip(images, captions, strict=True)):
        x, y = (i % columns) * width, (i // columns) * (height + CAPTION_HEIGHT)
        grid.paste(image.resize((width, height), Image.Resampling.NEAREST), (x, y))
        # Short lines so the caption fits a tiny image; the full prompt is in the tracker's caption.
        chars = max(8, width // 6)
        draw.text((x + 2, y + height + 1), caption[:chars], fill="black")
        draw.text((x + 2, y + height + 13), caption[chars : 2 * chars], fill="black")
    return grid


def log_sample_grid(
    images: list[Image.Image], prompts: list[str], scores: list[float], output_dir: str, step: int, trackers: list
) -> Path:
    """Write `samples/step_XXXXXX.png` and send the grid to each tracker ("tensorboard" writer or "wandb" module)."""
    captions = [f"{s:.3f} | {p}" for p, s in zip(prompts, scores, strict=True)]
    grid = image_grid(images, captions)
    path = Path(output_dir) / "samples" / f"step_{step:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    for tracker in trackers:
        if hasattr(tracker, "add_image"):  # TensorBoard SummaryWriter
            tracker.add_image("samples", np.asarray(grid), step, dataformats="HWC")
            tracker.add_text("samples/captions", "\n\n".join(captions), step)
        else:  # the wandb module
            tracker.log({"samples": [tracker.Image(im, caption=c) for im, c in zip(images, captions, strict=True)]})
    return path


def drop_lines_after(path: Path, step: int) -> int:
    """Rewrite `metrics.jsonl` (atomically) without the lines of steps after `step`; returns how many went."""
    lines = path.read_text().splitlines()
    kept = [line for line in lines if _line_step(line) <= step]
    if len(kept) < len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))
        logger.info(
            "%s: dropped %d line(s) of steps after %d (the run resumes there)", path, len(lines) - len(kept), step
        )
    return len(lines) - len(kept)


def _line_step(line: str) -> float:
    try:
        return float(json.loads(line).get("step", 0))
    except (ValueError, AttributeError, TypeError):
        return 0.0  # a line this module did not write is kept


class MetricsFileCallback(TrainerCallback):
    """Append every log to `metrics.jsonl`, warn on zero grad norm, plot reward curves at the end (main process)."""

    def __init__(self, output_dir: str):
        self.path = Path(output_dir) / "metrics.jsonl"

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed run repeats the steps after its checkpoint: drop their old lines so each step is logged once.
        if state.is_world_process_zero and state.global_step > 0 and self.path.is_file():
            drop_lines_after(self.path, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if logs.get("grad_norm") == 0.0:
            warn_once(
                logger,
                "zero_grad_norm",
                "grad_norm is exactly 0 at step %d: nothing is learning (constant rewards, all-zero advantages, or "
                "frozen/unreached parameters). Warned once; `grad_norm` per step is in %s.",
                state.global_step,
                self.path,
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"step": state.global_step, **_jsonable(logs)}) + "\n")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.exists():
            plot_reward_curves(self.path, self.path.parent / "reward_curves.png")


def format_progress_line(logs: dict, step: int, max_steps: int, step_seconds: float | None, eta: float | None) -> str:
    """`step 3/6 | reward understand 0.25 generate 0.49 | loss 1.2e-06 | grad_norm 0.34 | 1.6 s/step | ETA 0:00:05`.

    Per-task reward means are the `<task>/reward_mean` keys the trainer logs; missing fields are left out.
    """
    if "train_runtime" in logs:  # the HF Trainer's summary at the end of `train()`
        return f"done: {step} steps in {timedelta(seconds=round(logs['train_runtime']))}" + (
            f", mean loss {_num(logs['train_loss'])}" if "train_loss" in logs else ""
        )
    parts = [f"step {step}/{max_steps}"]
    rewards = [(k.removesuffix("/reward_mean"), v) for k, v in logs.items() if k.endswith("/reward_mean")]
    if rewards:
        parts.append("reward " + " ".join(f"{task} {_num(v)}" for task, v in rewards))
    shown = ("loss", "grad_norm") if "loss" in logs else tuple(k for k in logs if k.startswith("eval_"))[:6]
    parts += [f"{k} {_num(logs[k])}" for k in shown if k in logs]
    if step_seconds is not None:
        parts.append(f"{step_seconds:.3g} s/step")
    if eta is not None:
        parts.append(f"ETA {timedelta(seconds=round(eta))}")
    return " | ".join(parts)


def _num(value) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item()
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class ProgressLineCallback(TrainerCallback):
    """One `format_progress_line` per log, on the main process, in place of the HF Trainer's dict print / bar."""

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = self._last = time.monotonic()
        self._start_step = self._last_step = state.global_step  # > 0 when resuming
        if progress_logger.level == logging.NOTSET:
            progress_logger.setLevel(logging.INFO)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        now, step = time.monotonic(), state.global_step
        step_seconds = (now - self._last) / (step - self._last_step) if step > self._last_step else None
        done = step - self._start_step
        eta = (now - self._start) / done * (state.max_steps - step) if done > 0 else None
        self._last, self._last_step = now, step
        progress_logger.info(format_progress_line(logs, step, state.max_steps, step_seconds, eta))


def use_progress_lines(trainer) -> None:
    """Replace the HF Trainer's console printer (tqdm bar + dict, or the dict alone) by `ProgressLineCallback`."""
    for default in (ProgressCallback, PrinterCallback):  # NotebookProgressCallback subclasses neither; left alone
        trainer.remove_callback(default)
    trainer.add_callback(ProgressLineCallback())


def _jsonable(logs: dict) -> dict:
    out = {}
    for key, value in logs.items():
        if isinstance(value, torch.Tensor):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    return out


def rolling_mean(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last `window` points (fewer at the start), one value per input point."""
    sums = [0.0]
    for value in values:
        sums.append(sums[-1] + value)
    return [(sums[i + 1] - sums[max(0, i + 1 - window)]) / min(window, i + 1) for i in range(len(values))]


def plot_reward_curves(metrics_path: str | os.PathLike, out_path: str | os.PathLike, window: int = 10) -> Path | None:
    """One panel per task-level reward key (`*/reward_mean` and each `rewards/*/mean`) against the step: the raw
    per-step points and their `window`-step rolling mean, so the trend reads through GRPO's step-to-step noise."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on training nodes
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    keys = sorted(
        {
            k
            for r in records
            for k in r
            if k.endswith("reward_mean") or (k.startswith("rewards/") and k.endswith("/mean"))
        }
    )
    if not keys:
        return None
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 2.2 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        steps, values = [p[0] for p in points], [p[1] for p in points]
        ax.plot(steps, values, marker=".", linestyle="none", alpha=0.4, label="per step")
        ax.plot(steps, rolling_mean(values, window), label=f"rolling mean ({window} steps)")
        ax.legend(fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return Path(out_path)
