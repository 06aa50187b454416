"""Bad input is refused with file, row/line and field (issue 17), before any model loads where possible."""

import base64
import json
import logging

import pandas as pd
import pytest

from open_r1.evaluation import geneval, mme, mmmu, mmstar, pope, wise
from open_r1.evaluation.common import AnswerSettings, decode_image, warn_if_too_long
from open_r1.evaluation.compare import comparison_table, parse_value, read_run

NO_MODEL = ["--model_path", "nowhere", "--device", "cpu"]  # a driver that reached the model would fail on it


def _mmstar_rows(png, answers):
    image = base64.b64encode(png()).decode()
    question = "What is shown?\nOptions: A: a cat, B: a dog"
    return [
        {"index": i, "question": question, "answer": a, "category": "c", "l2_category": "l", "image": image}
        for i, a in enumerate(answers)
    ]


@pytest.mark.parametrize(("limit", "expected"), [("-1", "--limit -1: must be >= 1"), ("0", "--limit 0: must be >= 1")])
def test_limit_must_keep_items(tmp_path, png, limit, expected):
    data = tmp_path / "MMStar.tsv"
    pd.DataFrame(_mmstar_rows(png, ["A", "B"])).to_csv(data, sep="\t", index=False)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=expected):
        mmstar.BENCHMARK.main([*NO_MODEL, "--data", str(data), "--out_dir", str(out), "--limit", limit])
    assert not out.exists()


def test_empty_data_is_refused_not_scored_zero(tmp_path, png):
    data = tmp_path / "MMStar.tsv"
    pd.DataFrame(_mmstar_rows(png, ["A"])).iloc[:0].to_csv(data, sep="\t", index=False)
    with pytest.raises(ValueError, match="no items in"):
        mmstar.BENCHMARK.main([*NO_MODEL, "--data", str(data), "--out_dir", str(tmp_path / "out")])


def test_gold_answers_of_the_wrong_kind_are_refused(tmp_path, png):
    pd.DataFrame(_mmstar_rows(png, [1])).to_csv(tmp_path / "MMStar.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"MMStar.tsv:index=0: field 'answer' must be an option letter"):
        mmstar.load_items([tmp_path / "MMStar.tsv"])
    rows = [{"question_id": "a.png", "question": "Red?", "answer": "Maybe", "category": "color", "image": png()}]
    pd.DataFrame(rows).to_parquet(tmp_path / "mme.parquet")
    with pytest.raises(ValueError, match=r"mme.parquet:row 0: field 'answer' must be 'Yes' or 'No', got 'Maybe'"):
        mme.load_items([tmp_path / "mme.parquet"])
    row = {"id": "validation_Art_1", "question": "Q?", "options": "['x', 'y']", "answer": None}
    row |= {"question_type": "multiple-choice", "image_1": {"bytes": png(), "path": None}}
    pd.DataFrame([row]).to_parquet(tmp_path / "validation-00000-of-00001.parquet")
    with pytest.raises(ValueError, match=r"validation_Art_1: field 'answer' must be a non-empty string, got None"):
        mmmu.load_items([tmp_path / "validation-00000-of-00001.parquet"])


def test_corrupt_image_cells_name_their_row(tmp_path):
    with pytest.raises(ValueError, match=r"x.parquet:row 3: the image cannot be decoded"):
        decode_image({"bytes": b"not an image", "path": None}, where="x.parquet:row 3")
    with pytest.raises(ValueError, match=r"x.tsv:row 4: the image cannot be decoded"):
        decode_image(base64.b64encode(b"garbage bytes").decode(), where="x.tsv:row 4")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match=r"row 5 \(.*broken.jpg\): the image cannot be decoded"):
        decode_image("broken.jpg", tmp_path, where="row 5")


def test_bad_json_lines_name_file_and_line(tmp_path):
    metadata = tmp_path / "evaluation_metadata.jsonl"
    metadata.write_text('{"tag": "colors", "prompt": "a red car"}\nnot json\n')
    with pytest.raises(ValueError, match=r"evaluation_metadata.jsonl:2: .*invalid JSON"):
        geneval.load_metadata(metadata)
    split = tmp_path / "coco_pope_random.json"
    split.write_text('{"question_id": 1, "image": "a.jpg", "text": "Dog?", "label": "yes"}\n{"question_id": 2,\n')
    with pytest.raises(ValueError, match=r"coco_pope_random.json:2: .*invalid JSON"):
        pope.load_items([split])
    # A POPE file of one JSON line is one question, not a decode error.
    split.write_text('{"question_id": 1, "image": "a.jpg", "text": "Dog?", "label": "yes"}\n')
    (item,) = pope.load_items([split], image_root=tmp_path)
    assert item.id == "random/1" and item.answer == "yes"


def test_wise_file_of_strings_and_bad_question_templates(tmp_path):
    prompts = tmp_path / "natural_science.json"
    prompts.write_text(json.dumps(["ice melting", "snow"]))
    with pytest.raises(
        ValueError, match=r"natural_science.json\[0\]: expected an object with 'prompt_id' and 'Prompt'"
    ):
        wise.load_prompts([prompts])
    with pytest.raises(ValueError, match=r"unknown: \['answer'\]"):
        AnswerSettings(question_template="{question} {answer}")
    with pytest.raises(ValueError, match="not a valid format string"):
        AnswerSettings(question_template="{question} {")
    with pytest.raises(ValueError, match="must contain '{question}'"):
        AnswerSettings(question_template="no placeholder")
    assert AnswerSettings(question_template="{{literal}} {question}").question_template == "{{literal}} {question}"


def test_geneval_results_need_boolean_correct(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"tag": "colors", "correct": "False", "filename": "x.png"}) + "\n")
    with pytest.raises(ValueError, match=r"results.jsonl:1: fields 'tag' \(string\) and 'correct' \(true/false\)"):
        geneval.summarize_results(results)


def test_compare_refuses_unknown_benchmarks_and_non_finite_values_and_marks_smoke_runs(tmp_path):
    for bad, expected in (
        ("t:mmbench=3", "'mmbench' is not one of"),
        ("t:wise=nan", "finite"),
        ("t:wise=inf", "finite"),
    ):
        with pytest.raises(ValueError, match=expected):
            parse_value(bad)
    full = {"benchmark": "mmmu", "headline": 36.0, "num_samples": 900, "settings": {"limit": None}}
    smoke = {"benchmark": "mmmu", "headline": 40.0, "num_samples": 5, "settings": {"limit": 5}}
    empty = {"benchmark": "pope", "headline": 0.0, "num_samples": 0, "settings": {}}
    for run, results in (("base", [full]), ("trained", [smoke, empty])):
        for result in results:
            (tmp_path / run / result["benchmark"]).mkdir(parents=True)
            (tmp_path / run / result["benchmark"] / "results.json").write_text(json.dumps(result))
    runs, marks = {}, {}
    for run in ("base", "trained"):
        runs[run], marks[run] = read_run(tmp_path / run)
    assert marks == {"base": set(), "trained": {"mmmu", "pope"}}
    table = comparison_table(runs, [], marks)
    assert "| MMMU | acc % | 36.00 | 40.00* | +4.00 |" in table and "| POPE | F1 % | - | 0.00* | - |" in table
    assert table.endswith("* smoke run (--limit or no samples): not comparable with full runs or the paper.")
    assert "smoke" not in comparison_table({"base": runs["base"]}, [], {"base": marks["base"]})


def test_prompts_longer_than_the_context_warn(tiny_janus, caplog):
    model, _ = tiny_janus  # context: 1024 positions
    warn_if_too_long(model, 1000, 24, "question 'q1'")
    assert not caplog.records
    warn_if_too_long(model, 1000, 25, "question 'q1'")
    assert "question 'q1': 1000 prompt + 25 new tokens exceed the model's context of 1024" in caplog.text
    assert caplog.records[0].levelno == logging.WARNING
