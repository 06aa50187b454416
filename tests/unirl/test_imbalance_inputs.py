"""`open_r1.evaluation.imbalance` on hostile scorer rows (issue 25): string verdicts, unjudged answers."""

import json

import pytest

from open_r1.evaluation.imbalance import imbalance_metrics, load_scored_images


def _results(tmp_path, verdicts):
    path = tmp_path / "results.jsonl"
    rows = [{"filename": f"/out/{i:05d}/samples/0000.png", "tag": "counting", "prompt": "two clocks", "correct": v}
            for i, v in enumerate(verdicts)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_string_and_integer_verdicts_are_read_as_written(tmp_path):
    images = load_scored_images(_results(tmp_path, ["false", "True", 0, 1, False]), tmp_path)
    assert [image.correct for image in images] == [False, True, False, True, False]


@pytest.mark.parametrize("verdict", ["no", 2, None, [True]])
def test_an_unreadable_verdict_names_the_line_and_field(tmp_path, verdict):
    with pytest.raises(ValueError, match=r"results\.jsonl:2: correct: .* fix: write true or false"):
        load_scored_images(_results(tmp_path, [True, verdict]), tmp_path)


def test_answers_without_a_judge_verdict_are_left_out():
    records = [{"tag": "counting", "answer_correct": ok} for ok in (True, False, None)]
    assert imbalance_metrics(records)["overall"] == {"correct_images": 2, "answered_wrong": 1, "imbalance": 0.5}
