"""Sample grids, metrics file, reward plot and the loud warnings of open_r1.trainer.reporting."""

import json
import logging
from types import SimpleNamespace

import pytest
from PIL import Image

from open_r1.trainer.reporting import MetricsFileCallback, image_grid, log_sample_grid, plot_reward_curves


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
    state.global_step = 2
    callback.on_log(None, state, None, logs={"grad_norm": 1.0, "generate/reward_mean": float("nan")})
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[1] == {"step": 2, "grad_norm": 1.0, "generate/reward_mean": None}  # NaN -> null, valid JSON
    callback.on_train_end(None, state, None)
    assert (tmp_path / "reward_curves.png").is_file()
    assert plot_reward_curves(tmp_path / "metrics.jsonl", tmp_path / "x.png") == tmp_path / "x.png"
