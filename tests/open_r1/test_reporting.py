"""Sample grids, metrics file, reward plot, loud warnings and the console progress line of open_r1.trainer.reporting."""

import json
import logging
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from transformers import PrinterCallback, ProgressCallback, Trainer, TrainerState, TrainingArguments

from open_r1.trainer.reporting import (
    MetricsFileCallback,
    ProgressLineCallback,
    format_progress_line,
    image_grid,
    log_sample_grid,
    plot_reward_curves,
    use_progress_lines,
)


def test_image_grid_upscales_tiny_images_and_tiles_them():
    images = [Image.new("RGB", (32, 32), c) for c in ("red", "blue", "green", "white", "black")]
    grid = image_grid(images, [f"caption {i}" for i in range(5)], columns=4)
    assert grid.size == (4 * 160, 2 * (160 + 28))
    assert grid.getpixel((10, 10)) == (255, 0, 0) and grid.getpixel((170, 10)) == (0, 0, 255)
    with pytest.raises(ValueError, match="at least one"):
        image_grid([], [])


def test_log_sample_grid_writes_png_and_feeds_trackers(tmp_path):
    calls = []
    writer = SimpleNamespace(
        add_image=lambda *a, **k: calls.append("image"), add_text=lambda *a, **k: calls.append("text")
    )
    path = log_sample_grid([Image.new("RGB", (8, 8))], ["a red cube"], [0.5], str(tmp_path), 3, [writer])
    assert path == tmp_path / "samples" / "step_000003.png" and path.is_file()
    assert calls == ["image", "text"]


def test_metrics_file_plot_and_zero_grad_warning(tmp_path, caplog):
    callback = MetricsFileCallback(str(tmp_path))
    state = SimpleNamespace(is_world_process_zero=True, global_step=1)
    with caplog.at_level(logging.WARNING):
        callback.on_log(None, state, None, logs={"grad_norm": 0.0, "generate/reward_mean": 0.5})
    assert "grad_norm is exactly 0" in caplog.text
    caplog.clear()
    callback.on_log(None, state, None, logs={"grad_norm": 0.0})
    assert "grad_norm is exactly 0" not in caplog.text  # once per run, not every step
    state.global_step = 2
    callback.on_log(None, state, None, logs={"grad_norm": 1.0, "generate/reward_mean": float("nan")})
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[2] == {"step": 2, "grad_norm": 1.0, "generate/reward_mean": None}  # NaN -> null, valid JSON
    callback.on_train_end(None, state, None)
    assert (tmp_path / "reward_curves.png").is_file()
    assert plot_reward_curves(tmp_path / "metrics.jsonl", tmp_path / "x.png") == tmp_path / "x.png"


def test_reward_curves_plot_a_rolling_mean_beside_the_raw_points(tmp_path, monkeypatch):
    """Issue 25: the curves were raw per-step points only; a smoothed line now sits beside them."""
    import matplotlib.figure

    values = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": i + 1, "generate/reward_mean": v}) + "\n" for i, v in enumerate(values))
    )
    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig))
    plot_reward_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png", window=2)
    (ax,) = figures[0].axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["per step"].get_ydata()) == values
    smoothed = lines["rolling mean (2 steps)"]
    assert list(smoothed.get_xdata()) == [1, 2, 3, 4, 5, 6]
    assert list(smoothed.get_ydata()) == pytest.approx([0.0, 0.5, 0.5, 0.5, 0.5, 0.5])


# A real TRL-1.16 PairGRPO log record (demo, step 3), trimmed of the timing keys: what the line must summarise.
STEP_LOGS = {
    "loss": -2.3581087589263916e-06,
    "grad_norm": 0.45724127680079263,
    "learning_rate": 0.001,
    "rewards/demo_color/mean": 0.49247902631759644,
    "understand/reward_mean": 0.0,
    "understand/frac_reward_zero_std": 1.0,
    "generate/reward_mean": 0.49247902631759644,
    "pair_weight/mean": 1.0,
    "step_time": 1.8370935710000253,
    "epoch": 0.125,
}


def test_progress_line_format():
    line = format_progress_line(STEP_LOGS, 3, 6, 1.84, 125.4)
    assert line == (
        "step 3/6 | reward understand 0 generate 0.4925 | loss -2.358e-06 | grad_norm 0.4572 | 1.84 s/step | "
        "ETA 0:02:05"
    )
    assert format_progress_line({"loss": 0.5}, 1, 6, None, None) == "step 1/6 | loss 0.5"
    summary = {"train_runtime": 10.72, "train_loss": -3.075e-06, "train_steps_per_second": 0.56, "epoch": 0.25}
    assert format_progress_line(summary, 6, 6, None, None) == "done: 6 steps in 0:00:11, mean loss -3.075e-06"
    assert format_progress_line({"eval_loss": 0.25, "epoch": 1.0}, 4, 6, None, None) == "step 4/6 | eval_loss 0.25"


def test_progress_line_callback_main_process_only_with_step_time_and_eta(caplog, monkeypatch):
    clock = iter([100.0, 104.0, 110.0])  # train begin, step 2 logged, step 4 logged
    monkeypatch.setattr("open_r1.trainer.reporting.time.monotonic", lambda: next(clock))
    callback, state = ProgressLineCallback(), TrainerState(max_steps=10, global_step=0, is_world_process_zero=True)
    with caplog.at_level(logging.INFO, logger="open_r1.progress"):
        callback.on_train_begin(None, state, None)
        state.global_step = 2
        callback.on_log(None, state, None, logs={"loss": 0.5})
        state.global_step, state.is_world_process_zero = 4, False
        callback.on_log(None, state, None, logs={"loss": 0.4})  # a replica: silent, clock untouched
        state.is_world_process_zero = True
        callback.on_log(None, state, None, logs={"loss": 0.4})
    assert caplog.messages == [
        "step 2/10 | loss 0.5 | 2 s/step | ETA 0:00:16",
        "step 4/10 | loss 0.4 | 3 s/step | ETA 0:00:15",  # ETA from the mean since start: 10 s / 4 steps * 6
    ]


@pytest.mark.parametrize("disable_tqdm", [False, True])
def test_use_progress_lines_replaces_the_default_printers(tmp_path, disable_tqdm):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, disable_tqdm=disable_tqdm)
    trainer = Trainer(model=torch.nn.Linear(2, 1), args=args)
    default = PrinterCallback if disable_tqdm else ProgressCallback
    assert any(isinstance(cb, default) for cb in trainer.callback_handler.callbacks)
    use_progress_lines(trainer)
    kinds = [type(cb) for cb in trainer.callback_handler.callbacks]
    assert ProgressLineCallback in kinds and ProgressCallback not in kinds and PrinterCallback not in kinds
