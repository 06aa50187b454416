"""What PairGRPO writes besides checkpoints: sample-image grids, `metrics.jsonl`, a reward-curve PNG, loud warnings.

Grids go to `output_dir/samples/` always and to TensorBoard / W&B when they are in `report_to`.
"""

import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

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


class MetricsFileCallback(TrainerCallback):
    """Append every log to `metrics.jsonl`, warn on zero grad norm, plot reward curves at the end (main process)."""

    def __init__(self, output_dir: str):
        self.path = Path(output_dir) / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if logs.get("grad_norm") == 0.0:
            logger.warning(
                "grad_norm is exactly 0 at step %d: nothing is learning (constant rewards, all-zero advantages, or "
                "frozen/unreached parameters).",
                state.global_step,
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"step": state.global_step, **_jsonable(logs)}) + "\n")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.exists():
            plot_reward_curves(self.path, self.path.parent / "reward_curves.png")


def _jsonable(logs: dict) -> dict:
    out = {}
    for key, value in logs.items():
        if isinstance(value, torch.Tensor):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    return out


def plot_reward_curves(metrics_path: str | os.PathLike, out_path: str | os.PathLike) -> Path | None:
    """One panel per task-level reward key (`*/reward_mean` and each `rewards/*/mean`) against the step."""
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
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return Path(out_path)
