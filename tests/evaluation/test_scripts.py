"""The thin command-line scripts: each parses its flags and produces its documented outputs."""

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

import janus

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _run(monkeypatch, script, *args):
    monkeypatch.setattr(sys, "argv", [script, *map(str, args)])
    runpy.run_path(str(SCRIPTS / script), run_name="__main__")


def test_eval_geneval_and_wise_scripts(monkeypatch, tiny_janus_path, tmp_path):
    metadata = tmp_path / "evaluation_metadata.jsonl"
    metadata.write_text(json.dumps({"tag": "colors", "prompt": "a red car"}) + "\n")
    common = ["--model_path", tiny_janus_path, "--device", "cpu", "--dtype", "float32", "--samples_per_prompt", 1]
    _run(monkeypatch, "eval_geneval.py", "generate", "--metadata", metadata, "--out_dir", tmp_path / "g", *common)
    assert (tmp_path / "g/00000/samples/0000.png").is_file()
    prompts = tmp_path / "natural_science.json"
    prompts.write_text(json.dumps([{"prompt_id": 701, "Prompt": "ice melting in the sun"}]))
    _run(monkeypatch, "eval_wise.py", "--prompts", prompts, "--out_dir", tmp_path / "w", *common)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [".lock", "701.png", "run_key.json"]


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
