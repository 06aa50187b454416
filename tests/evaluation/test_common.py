"""Shared evaluation machinery: resumable prediction logs, atomic writes, image cells, yes/no parsing, the runners."""

import base64
import json

import pytest
from PIL import Image

from open_r1.evaluation.common import (
    AnswerSettings,
    PredictionLog,
    UnderstandingBenchmark,
    UnderstandingItem,
    answer_items,
    decode_image,
    extract_yes_no,
    markdown_table,
    percent,
    write_json,
)


def test_prediction_log_resumes_and_drops_a_partly_written_last_line(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"id": "a", "prediction": "yes"}\n{"id": "b", "prediction": "no"}\n{"id": "c", "pred')
    log = PredictionLog(path)
    assert set(log.records) == {"a", "b"} and "c" not in log
    log.append([{"id": "c", "prediction": "yes"}])
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b", "c"]
    assert set(PredictionLog(path).records) == {"a", "b", "c"}


def test_prediction_log_refuses_a_corrupt_middle_line(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ValueError, match="predictions.jsonl:2"):
        PredictionLog(path)


def test_write_json_is_atomic_and_leaves_no_temp_files(tmp_path):
    write_json(tmp_path / "sub" / "results.json", {"x": 1})
    write_json(tmp_path / "sub" / "results.json", {"x": 2})
    assert json.loads((tmp_path / "sub" / "results.json").read_text()) == {"x": 2}
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["results.json"]


def test_decode_image_reads_every_published_cell_format(tmp_path, png):
    data = png("blue", (20, 10))
    (tmp_path / "x.png").write_bytes(data)
    cells = [{"bytes": data, "path": None}, data, base64.b64encode(data).decode(), "x.png"]
    for cell in cells:
        image = decode_image(cell, image_root=tmp_path)
        assert image.size == (20, 10) and image.mode == "RGB" and image.getpixel((0, 0)) == (0, 0, 255)
    with pytest.raises(ValueError, match="neither a file"):
        decode_image("missing.jpg", image_root=tmp_path)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("Yes", "yes"),
        ("no.", "no"),
        ("Yes, there is a dog in the image.", "yes"),
        ("There is no dog, so the answer is yes.", "yes"),
        ("I see no dog here.", "no"),
        ("<think>Maybe yes, maybe not.</think><answer>No</answer>", "no"),
        ("<think>It says no.</think> Yes", "yes"),
        ("Nothing is visible.", None),
        ("I cannot tell.", None),
    ],
)
def test_extract_yes_no(completion, expected):
    assert extract_yes_no(completion) == expected


def test_percent_and_table_formatting():
    assert percent(1, 3) == 33.33 and percent(0, 0) == 0.0
    table = markdown_table(["a", "b"], [["x", 1.5], ["y", None]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x | 1.50 |", "| y | - |"]


def test_answer_items_answers_only_what_is_missing(tiny_backbone, tmp_path, count_calls):
    model, backbone = tiny_backbone
    calls = count_calls("sample_answer_tokens")
    items = [
        UnderstandingItem(str(i), f"Question {i}?", "yes", lambda: Image.new("RGB", (40, 30), "red"), {"k": i})
        for i in range(5)
    ]
    log = PredictionLog(tmp_path / "predictions.jsonl")
    settings = AnswerSettings(batch_size=2, max_new_tokens=4)
    first = answer_items(model, backbone, items[:3], log, settings)
    assert calls == [2, 1]
    records = answer_items(model, backbone, items, PredictionLog(tmp_path / "predictions.jsonl"), settings)
    assert calls == [2, 1, 2]  # only items 3 and 4 were new
    assert records[:3] == first
    assert [r["id"] for r in records] == ["0", "1", "2", "3", "4"] and records[4]["k"] == 4
    assert all(isinstance(r["prediction"], str) for r in records)


def test_question_template_and_system_prompt_reach_the_processor(tiny_backbone, tmp_path, monkeypatch):
    model, backbone = tiny_backbone
    seen = []
    original = backbone.processor.encode_understanding

    def spy(questions, images, **kwargs):
        seen.append((questions, kwargs))
        return original(questions, images, **kwargs)

    monkeypatch.setattr(backbone.processor, "encode_understanding", spy)
    item = UnderstandingItem("q", "Is it red?", "yes", lambda: Image.new("RGB", (8, 8), "red"))
    settings = AnswerSettings(
        max_new_tokens=2, system_prompt="Be brief.", question_template="{question}\nThink first."
    )
    answer_items(model, backbone, [item], PredictionLog(tmp_path / "p.jsonl"), settings)
    assert seen == [(["Is it red?\nThink first."], {"system_prompt": "Be brief."})]
    with pytest.raises(ValueError, match="must contain"):
        AnswerSettings(question_template="no placeholder")


def test_understanding_benchmark_cli_forwards_loader_options_and_saves_the_headline(tiny_janus_path, tmp_path, capsys):
    seen = {}

    def load_items(paths, limit=None, image_root=None):
        seen.update(paths=list(paths), limit=limit, image_root=image_root)
        return [UnderstandingItem("q1", "Is it red?", "yes", lambda: Image.new("RGB", (8, 8), "red"))]

    benchmark = UnderstandingBenchmark(
        name="toy",
        headline_metric="score",
        load_items=load_items,
        score=lambda records: {"score": 12.5, "count": len(records)},
        table=lambda result: f"toy table {result.headline}",
        description="A toy benchmark.",
        data_help="toy files",
        file_patterns=("*.json",),
        loader_options={"image_root": "Where the images are."},
    )
    data = tmp_path / "a.json"
    data.write_text("[]")
    out = tmp_path / "out"
    args = ["--model_path", str(tiny_janus_path), "--data", str(data), "--out_dir", str(out), "--device", "cpu"]
    summary = benchmark.main([*args, "--image_root", "images", "--limit", "5", "--max_new_tokens", "2"])
    assert seen == {"paths": [str(data)], "limit": 5, "image_root": "images"}
    result = json.loads((out / "results.json").read_text())
    assert result["benchmark"] == "toy" and result["headline_metric"] == "score" and result["headline"] == 12.5
    assert result["metrics"] == {"score": 12.5, "count": 1} and result["num_samples"] == 1
    assert result["settings"]["image_root"] == "images" and result["model"] == str(tiny_janus_path.resolve())
    assert result["settings"]["limit"] == 5 and result["settings"]["max_new_tokens"] == 2
    assert [json.loads(line)["id"] for line in (out / "predictions.jsonl").read_text().splitlines()] == ["q1"]
    assert summary == (
        f"toy table 12.5\ntoy: score = 12.50 over 1 items; wrote {out / 'predictions.jsonl'} and "
        f"{out / 'results.json'}"
    )
    # The answering progress bar (tqdm, on stderr) shows done/total.
    err = capsys.readouterr().err
    assert "answering: 100%" in err and "1/1" in err


def test_understanding_cli_passes_decoding_flags_into_answer_settings():
    import argparse

    from open_r1.evaluation.common import add_understanding_args, answer_settings_from_args

    parser = argparse.ArgumentParser()
    add_understanding_args(parser, "data files")
    args = parser.parse_args(
        ["--model_path", "m", "--data", "d", "--out_dir", "o", "--question_template", "Q: {question} A:"]
        + ["--system_prompt", "", "--max_new_tokens", "7", "--batch_size", "3"]
    )
    settings = answer_settings_from_args(args)
    assert settings.question_template == "Q: {question} A:"
    assert (settings.system_prompt, settings.max_new_tokens, settings.batch_size) == ("", 7, 3)
