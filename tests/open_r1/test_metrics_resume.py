"""metrics.jsonl after a resume holds each step once: the abandoned steps after the checkpoint go (issue 25)."""

import json
from types import SimpleNamespace

from open_r1.trainer.reporting import MetricsFileCallback


def _state(step):
    return SimpleNamespace(global_step=step, is_world_process_zero=True)


def test_a_resumed_run_logs_each_step_once(tmp_path):
    callback = MetricsFileCallback(str(tmp_path))
    for step in range(1, 6):  # the first run logged steps 1..5, then died; its last checkpoint is step 3
        callback.on_log(None, _state(step), None, logs={"loss": float(step)})
    callback.on_train_begin(None, _state(3), None)
    for step in (4, 5):
        callback.on_log(None, _state(step), None, logs={"loss": 10.0 + step})
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5]
    assert [line["loss"] for line in lines] == [1.0, 2.0, 3.0, 14.0, 15.0]


def test_a_fresh_start_keeps_the_file_as_it_is(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 7, "loss": 1.0}\n')
    MetricsFileCallback(str(tmp_path)).on_train_begin(None, _state(0), None)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 7, "loss": 1.0}\n'
