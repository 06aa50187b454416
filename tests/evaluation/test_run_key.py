"""Output folders never mix runs (issue 17): the run key (model, data hashes, settings) decides whether a rerun
resumes or is refused, `--overwrite` starts over, and one folder has one writer at a time."""

import base64
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from open_r1.evaluation import geneval, mme, mmstar, wise
from open_r1.evaluation.common import AnswerSettings, GenerationSettings
from open_r1.evaluation.run_key import RunKeyMismatch, claim_out_dir, key_differences, make_key

SETTINGS = AnswerSettings(batch_size=4, max_new_tokens=2)
QUESTION = "What is shown?\nOptions: A: a cat, B: a dog"


def _mmstar_tsv(path, png, answers):
    image = base64.b64encode(png()).decode()
    rows = [
        {"index": i, "question": QUESTION, "answer": a, "category": "c", "l2_category": "l", "image": image}
        for i, a in enumerate(answers)
    ]
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture
def model_b(tiny_janus_path, tmp_path):
    """The same weights under another folder: another model as far as the run key can tell."""
    return shutil.copytree(tiny_janus_path, tmp_path / "model_b")


def test_another_model_data_or_setting_is_refused_and_overwrite_starts_over(
    tiny_backbone, tiny_janus_path, model_b, tmp_path, png, count_calls
):
    model, backbone = tiny_backbone
    calls = count_calls("sample_answer_tokens")
    data = _mmstar_tsv(tmp_path / "MMStar.tsv", png, ["A", "B", "A"])
    out = tmp_path / "mmstar"
    first = mmstar.BENCHMARK.run(model, backbone, [data], out, SETTINGS)
    assert first.model == str(tiny_janus_path.resolve()) and calls == [3]
    results = (out / "results.json").read_bytes()
    predictions = (out / "predictions.jsonl").read_bytes()

    refused = [
        ({"model_path": model_b}, "model.path"),
        ({"settings": AnswerSettings(batch_size=4, max_new_tokens=3)}, "settings.max_new_tokens: 2 -> 3"),
        ({"settings": AnswerSettings(max_new_tokens=2, question_template="Q: {question}")}, "question_template"),
        ({"settings": AnswerSettings(max_new_tokens=2, system_prompt="Be brief.")}, "settings.system_prompt"),
        ({"limit": 1}, "settings.limit: None -> 1"),  # a smoke rerun over the full run
    ]
    for change, field in refused:
        kwargs = {"settings": SETTINGS, **change}
        with pytest.raises(RunKeyMismatch, match=field) as error:
            mmstar.BENCHMARK.run(model, backbone, [data], out, kwargs.pop("settings"), **kwargs)
        assert "--overwrite" in str(error.value) and "another --out_dir" in str(error.value)
    # A changed answer key is another run too (the old gold answers must not be reused).
    _mmstar_tsv(data, png, ["B", "A", "B"])
    with pytest.raises(RunKeyMismatch, match="data"):
        mmstar.BENCHMARK.run(model, backbone, [data], out, SETTINGS)
    assert calls == [3]  # nothing was answered by a refused run
    assert (out / "results.json").read_bytes() == results and (out / "predictions.jsonl").read_bytes() == predictions

    rerun = mmstar.BENCHMARK.run(model, backbone, [data], out, SETTINGS, overwrite=True)
    assert calls == [3, 3]  # every question answered again, scored against the new key
    assert [json.loads(line)["answer"] for line in (out / "predictions.jsonl").read_text().splitlines()] == list("BAB")
    assert rerun.num_samples == 3
    # Batch size is speed only: the same run resumes (nothing left to answer).
    mmstar.BENCHMARK.run(model, backbone, [data], out, AnswerSettings(batch_size=1, max_new_tokens=2))
    assert calls == [3, 3]


def test_two_benchmarks_never_share_a_folder(tiny_backbone, tmp_path, png):
    model, backbone = tiny_backbone
    data = _mmstar_tsv(tmp_path / "MMStar.tsv", png, ["A"])
    out = tmp_path / "shared"
    mmstar.BENCHMARK.run(model, backbone, [data], out, SETTINGS)
    rows = [{"question_id": "a.png", "question": "Red?", "answer": "Yes", "category": "color", "image": png()}]
    pd.DataFrame(rows).to_parquet(tmp_path / "mme.parquet")
    with pytest.raises(RunKeyMismatch, match="benchmark: 'mmstar' -> 'mme'"):
        mme.BENCHMARK.run(model, backbone, [tmp_path / "mme.parquet"], out, SETTINGS)
    assert json.loads((out / "results.json").read_text())["benchmark"] == "mmstar"


def test_a_folder_with_outputs_but_no_run_key_is_refused(tiny_backbone, tmp_path, png):
    model, backbone = tiny_backbone
    data = _mmstar_tsv(tmp_path / "MMStar.tsv", png, ["A"])
    out = tmp_path / "old"
    out.mkdir()
    (out / "predictions.jsonl").write_text('{"id": "0", "prediction": "A"}\n')
    with pytest.raises(RunKeyMismatch, match="without a run_key.json"):
        mmstar.BENCHMARK.run(model, backbone, [data], out, SETTINGS)


def test_one_writer_per_folder_and_the_lock_dies_with_its_process(tmp_path):
    key = {"benchmark": "x"}
    with claim_out_dir(tmp_path, key, lambda out: []):
        with pytest.raises(ValueError, match="another evaluation is writing into it"):
            with claim_out_dir(tmp_path, key, lambda out: []):
                pass
    # A run killed by SIGKILL while holding the lock must not block its own resume.
    killed = (
        "import os, signal, sys\n"
        "from open_r1.evaluation.run_key import claim_out_dir\n"
        f"with claim_out_dir({str(tmp_path)!r}, {{'benchmark': 'x'}}, lambda out: []):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", killed]).returncode == -9
    with claim_out_dir(tmp_path, key, lambda out: []) as out:
        assert json.loads((out / "run_key.json").read_text()) == key


def test_key_differences_name_each_changed_field():
    old = {"settings": {"seed": 0, "limit": None}, "data": {"a": "1"}}
    new = {"settings": {"seed": 1, "limit": None}, "data": {"b": "1"}}
    assert key_differences(old, new) == [
        "data.a: '1' -> '<absent>'",
        "data.b: '<absent>' -> '1'",
        "settings.seed: 0 -> 1",
    ]


def test_model_identity_follows_the_weight_files(tiny_janus_path, model_b, tmp_path):
    data = tmp_path / "d.json"
    data.write_text("[]")
    before = make_key("b", model_b, [data], {})
    assert make_key("b", model_b, [data], {}) == before
    weights = next(p for p in model_b.iterdir() if p.suffix in (".safetensors", ".bin"))
    weights.write_bytes(weights.read_bytes() + b"\0")  # a re-export into the same folder
    assert make_key("b", model_b, [data], {})["model"] != before["model"]
    with pytest.raises(ValueError, match="does not exist"):
        make_key("b", tmp_path / "missing", [data], {})


GENEVAL = [{"tag": "colors", "prompt": "a red car"}, {"tag": "colors", "prompt": "a blue car"}]


def test_geneval_keeps_no_images_of_another_setting(tiny_backbone, tmp_path, count_calls):
    model, backbone = tiny_backbone
    calls = count_calls("sample_image_tokens")
    metadata = tmp_path / "evaluation_metadata.jsonl"
    metadata.write_text("".join(json.dumps(row) + "\n" for row in GENEVAL))
    out = tmp_path / "geneval"
    geneval.run_geneval(model, backbone, metadata, out, GenerationSettings(samples_per_prompt=1))
    for changed in (
        GenerationSettings(samples_per_prompt=1, seed=1),
        GenerationSettings(samples_per_prompt=1, cfg_weight=3),
    ):
        with pytest.raises(RunKeyMismatch, match="seed|cfg_weight"):
            geneval.run_geneval(model, backbone, metadata, out, changed)
    # A smoke run with --limit 1 over the full folder: refused, then --overwrite leaves only its own prompt.
    with pytest.raises(RunKeyMismatch, match="limit"):
        geneval.run_geneval(model, backbone, metadata, out, GenerationSettings(samples_per_prompt=1), limit=1)
    drawn = geneval.run_geneval(
        model, backbone, metadata, out, GenerationSettings(samples_per_prompt=1, seed=1), limit=1, overwrite=True
    )
    assert drawn == 1 and calls == [1, 1, 1]
    assert sorted(p.name for p in out.iterdir()) == [".lock", "00000", "run_key.json"]


def test_wise_overwrite_removes_only_its_images(tiny_backbone, tmp_path):
    model, backbone = tiny_backbone
    prompts = tmp_path / "natural_science.json"
    prompts.write_text(json.dumps([{"prompt_id": 701, "Prompt": "ice in the sun"}]))
    out = tmp_path / "wise"
    wise.run_wise(model, backbone, [prompts], out, GenerationSettings(samples_per_prompt=1))
    (out / "Results").mkdir()
    (out / "Results" / "scores.jsonl").write_text("{}\n")  # the GPT-4o scorer's output, not ours
    prompts.write_text(json.dumps([{"prompt_id": 702, "Prompt": "snow in the sun"}]))
    with pytest.raises(RunKeyMismatch, match="data"):
        wise.run_wise(model, backbone, [prompts], out, GenerationSettings(samples_per_prompt=1))
    wise.run_wise(model, backbone, [prompts], out, GenerationSettings(samples_per_prompt=1), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "702.png", "Results", "run_key.json"]
