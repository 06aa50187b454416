"""The thin command-line scripts: each parses its flags and produces its documented outputs."""

import json
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

import janus

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _run(monkeypatch, script, *args):
    monkeypatch.setattr(sys, "argv", [script, *map(str, args)])
    runpy.run_path(str(SCRIPTS / script), run_name="__main__")


def test_eval_geneval_and_wise_scripts(monkeypatch, tiny_janus_path, tmp_path, capsys):
    metadata = tmp_path / "evaluation_metadata.jsonl"
    metadata.write_text(json.dumps({"tag": "colors", "prompt": "a red car"}) + "\n")
    common = ["--model_path", tiny_janus_path, "--device", "cpu", "--dtype", "float32", "--samples_per_prompt", 1]
    _run(monkeypatch, "eval_geneval.py", "generate", "--metadata", metadata, "--out_dir", tmp_path / "g", *common)
    assert (tmp_path / "g/00000/samples/0000.png").is_file()
    captured = capsys.readouterr()
    assert "drawing: 100%" in captured.err and "1/1" in captured.err  # the progress bar
    assert captured.out.startswith("GenEval: 1 prompts drawn, 0 already complete; 1 prompt folders")
    prompts = tmp_path / "natural_science.json"
    prompts.write_text(json.dumps([{"prompt_id": 701, "Prompt": "ice melting in the sun"}]))
    _run(monkeypatch, "eval_wise.py", "--prompts", prompts, "--out_dir", tmp_path / "w", *common)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [".lock", "701.png", "run_key.json"]
    assert capsys.readouterr().out.startswith(
        f"WISE: 1 prompts drawn, 0 already present; 1 images <prompt_id>.png in {tmp_path / 'w'}"
    )


def test_other_ranks_show_no_bar_and_no_summary(monkeypatch, tiny_janus_path, tmp_path, capsys):
    prompts = tmp_path / "natural_science.json"
    prompts.write_text(json.dumps([{"prompt_id": 701, "Prompt": "ice melting in the sun"}]))
    common = ["--model_path", tiny_janus_path, "--device", "cpu", "--prompts", prompts]
    monkeypatch.setenv("RANK", "1")
    _run(monkeypatch, "eval_wise.py", *common, "--out_dir", tmp_path / "rank1")
    captured = capsys.readouterr()
    assert (tmp_path / "rank1/701.png").is_file() and captured.out == "" and "drawing" not in captured.err
    monkeypatch.setenv("RANK", "0")
    _run(monkeypatch, "eval_wise.py", *common, "--out_dir", tmp_path / "rank0")
    captured = capsys.readouterr()
    assert captured.out.startswith("WISE: 1 prompts drawn") and "drawing: 100%" in captured.err


def test_understanding_script_prints_table_and_where_it_wrote(monkeypatch, tiny_janus_path, tmp_path, capsys, png):
    rows = [{"question_id": "a.png", "question": "Red?", "answer": "Yes", "category": "color", "image": png()}]
    pd.DataFrame(rows).to_parquet(tmp_path / "mme.parquet")
    out = tmp_path / "mme"
    args = ["--model_path", tiny_janus_path, "--data", tmp_path / "mme.parquet", "--out_dir", out, "--device", "cpu"]
    _run(monkeypatch, "eval_mme.py", *args, "--max_new_tokens", 2)
    captured = capsys.readouterr()
    assert "| MME subtask | acc % | acc+ % | score |" in captured.out
    assert captured.out.strip().endswith(f"over 1 items; wrote {out / 'predictions.jsonl'} and {out / 'results.json'}")
    assert "answering: 100%" in captured.err


def test_answer_questions_never_loses_or_overwrites_without_consent(monkeypatch, tiny_janus_path, tmp_path, capsys):
    Image.new("RGB", (16, 16), "red").save(tmp_path / "red.png")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"image_path": "red.png", "question": "Color?"}) + "\n")
    base = ["--model_path", tiny_janus_path, "--device", "cpu", "--max_new_tokens", 2, "--input", questions]
    with pytest.raises(ValueError, match="is the --input file"):
        _run(monkeypatch, "answer_questions.py", *base, "--output", questions, "--overwrite")
    assert json.loads(questions.read_text())["question"] == "Color?"
    output = tmp_path / "a.jsonl"
    output.write_text("previous answers\n")
    with pytest.raises(ValueError, match="exists; pass --overwrite"):
        _run(monkeypatch, "answer_questions.py", *base, "--output", output)
    questions.write_text(questions.read_text() + "{not json\n")
    with pytest.raises(ValueError, match=r"q.jsonl:2: .*invalid JSON"):
        _run(monkeypatch, "answer_questions.py", *base, "--output", output, "--overwrite")
    # A crash mid-run (here: a corrupt image) leaves the existing output as it was.
    questions.write_text(json.dumps({"image_path": "bad.png", "question": "Color?"}) + "\n")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"q.jsonl:1: image_path.*cannot be decoded"):
        _run(monkeypatch, "answer_questions.py", *base, "--output", output, "--overwrite")
    assert output.read_text() == "previous answers\n"
    questions.write_text(json.dumps({"image_path": "red.png", "question": "Color?"}) + "\n")
    capsys.readouterr()
    _run(monkeypatch, "answer_questions.py", *base, "--output", output, "--overwrite")
    assert set(json.loads(output.read_text())) == {"image_path", "question", "answer"}
    captured = capsys.readouterr()
    assert captured.out == f"Wrote 1 answers to {output}\n" and "answering: 100%" in captured.err


def test_generate_images_resumes_its_own_run_and_keeps_no_stale_pngs(monkeypatch, tiny_janus_path, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red apple\na blue car\n")
    out = tmp_path / "out"
    base = ["--model_path", tiny_janus_path, "--device", "cpu", "--prompts", prompts, "--out_dir", out]
    _run(monkeypatch, "generate_images.py", *base)
    first = (out / "00001_00.png").read_bytes()
    assert capsys.readouterr().out == f"Wrote 2 new images (0 already there) and metadata.jsonl to {out}\n"
    (out / "00001_00.png").unlink()  # a killed run
    _run(monkeypatch, "generate_images.py", *base)
    assert (out / "00001_00.png").read_bytes() == first
    assert "Wrote 1 new images (1 already there)" in capsys.readouterr().out
    prompts.write_text("a green tree\n")
    with pytest.raises(ValueError, match="--overwrite"):
        _run(monkeypatch, "generate_images.py", *base)
    _run(monkeypatch, "generate_images.py", *base, "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == [".lock", "00000_00.png", "metadata.jsonl", "run_key.json"]
    assert [json.loads(line)["prompt"] for line in (out / "metadata.jsonl").read_text().splitlines()] == [
        "a green tree"
    ]
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "x"}\n{oops\n')
    with pytest.raises(ValueError, match=r"p.jsonl:2: .*invalid JSON"):
        _run(monkeypatch, "generate_images.py", *base[:4], "--prompts", bad, "--out_dir", tmp_path / "o2")


def test_usage_lines_show_a_local_folder_not_a_hub_id():
    for script in ("generate_images.py", "answer_questions.py"):
        usage = (SCRIPTS / script).read_text().split('"""')[1]
        assert "--model_path checkpoints/Janus-Pro-1B" in usage and "deepseek-ai/" not in usage


@pytest.mark.slow
def test_export_and_compare_scripts(monkeypatch, tiny_janus, tiny_janus_path, tmp_path, capsys):
    _run(monkeypatch, "export_checkpoint.py", "--checkpoint", tiny_janus_path, "--out_dir", tmp_path / "hf")
    reloaded, _ = janus.load_pretrained(tmp_path / "hf")
    assert all(torch.equal(v, tiny_janus[0].state_dict()[k]) for k, v in reloaded.state_dict().items())
    for run, score in (("base", 36.0), ("trained", 40.0)):
        (tmp_path / run / "mmmu").mkdir(parents=True)
        result = {"benchmark": "mmmu", "headline": score}
        (tmp_path / run / "mmmu" / "results.json").write_text(json.dumps(result))
    table = tmp_path / "table.md"
    args = ["--run", f"base={tmp_path / 'base'}", "--run", f"trained={tmp_path / 'trained'}", "--output", table]
    _run(monkeypatch, "compare_runs.py", *args, "--value", "trained:wise=0.4", "--reference", "PairUni-7B")
    printed = capsys.readouterr().out
    assert "| MMMU | acc % | 36.00 | 40.00 | +4.00 | 47.00 |" in printed
    assert "| WISE | WiScore | - | 0.400 | - | 0.450 |" in printed
    assert printed.strip().endswith(f"Wrote the table to {table}")
    assert table.read_text().strip() in printed
