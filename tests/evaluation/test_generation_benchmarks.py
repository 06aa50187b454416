"""GenEval and WISE drivers: exact output layouts, per-prompt seeds, resume, and the GenEval summary arithmetic."""

import json

import pytest
from PIL import Image

from open_r1.evaluation import geneval, wise
from open_r1.evaluation.common import GenerationSettings

GENEVAL_ROWS = [
    {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
    {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"},
    {"tag": "counting", "include": [{"class": "cat", "count": 2}], "prompt": "a photo of two cats"},
]


@pytest.fixture
def geneval_metadata(tmp_path):
    path = tmp_path / "evaluation_metadata.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in GENEVAL_ROWS))
    return path


BOOKKEEPING = {"run_key.json", ".lock"}  # the run key and the writer's lock, beside the official layout


def _files(folder):
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    assert BOOKKEEPING <= set(files)
    return {name: data for name, data in files.items() if name not in BOOKKEEPING}


def test_geneval_writes_the_official_layout(tiny_backbone, geneval_metadata, tmp_path, count_calls):
    model, backbone = tiny_backbone
    out = tmp_path / "geneval"
    decodes = count_calls("decode_image_tokens")
    geneval.run_geneval(model, backbone, geneval_metadata, out, GenerationSettings(samples_per_prompt=4), grid=True)
    assert len(decodes) == 3  # one decode per prompt (its 4 images), none inside the sampler
    expected = {f"{i:05d}/{name}" for i in range(3) for name in ("metadata.jsonl", "grid.png")}
    expected |= {f"{i:05d}/samples/{s:04d}.png" for i in range(3) for s in range(4)}
    assert set(_files(out)) == expected
    for index, row in enumerate(GENEVAL_ROWS):
        # The official scorer reads the file with json.loads(fp.read()).
        assert json.loads((out / f"{index:05d}" / "metadata.jsonl").read_text()) == row
    side = backbone.processor.image_size  # tiny VQ: 4x4 tokens x 8 px
    assert Image.open(out / "00000/samples/0000.png").size == (side, side)
    assert Image.open(out / "00000/grid.png").size == (4 * side, side)


def test_geneval_resume_redraws_only_missing_prompts_with_the_same_seed(
    tiny_backbone, geneval_metadata, tmp_path, count_calls
):
    model, backbone = tiny_backbone
    calls = count_calls("sample_image_tokens")
    settings = GenerationSettings(samples_per_prompt=2, seed=7)
    out = tmp_path / "run"
    geneval.run_geneval(model, backbone, geneval_metadata, out, settings)
    assert calls == [2, 2, 2]  # one sampler call per prompt, its samples batched
    first = _files(out)
    # A crash mid-prompt: prompt 1 lost a sample and its metadata; prompt 2 is gone entirely.
    (out / "00001/samples/0001.png").unlink()
    (out / "00001/metadata.jsonl").unlink()
    for path in sorted((out / "00002").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    untouched = (out / "00000/samples/0000.png").stat().st_mtime_ns
    geneval.run_geneval(model, backbone, geneval_metadata, out, settings)
    assert calls == [2, 2, 2, 2, 2]
    assert _files(out) == first  # per-prompt seeds: redrawn prompts are bit-identical
    assert (out / "00000/samples/0000.png").stat().st_mtime_ns == untouched
    geneval.run_geneval(model, backbone, geneval_metadata, out, settings)
    assert len(calls) == 5  # complete folder: nothing to do


def test_geneval_seed_changes_images_and_batching_prompts_keeps_the_layout(tiny_backbone, geneval_metadata, tmp_path):
    model, backbone = tiny_backbone

    def run(name, **settings):
        geneval.run_geneval(
            model, backbone, geneval_metadata, tmp_path / name, GenerationSettings(**settings), limit=2
        )
        return _files(tmp_path / name)

    seed0 = run("a", samples_per_prompt=1, seed=0)
    assert seed0 != run("b", samples_per_prompt=1, seed=1)
    assert set(seed0) == {
        "00000/metadata.jsonl",
        "00000/samples/0000.png",
        "00001/metadata.jsonl",
        "00001/samples/0000.png",
    }
    assert run("c", samples_per_prompt=1, seed=0, prompts_per_batch=2) == seed0


def test_geneval_images_do_not_depend_on_prompts_per_batch(tiny_backbone, geneval_metadata, tmp_path, count_calls):
    model, backbone = tiny_backbone
    calls = count_calls("sample_image_tokens")

    def run(name, prompts_per_batch):
        settings = GenerationSettings(samples_per_prompt=2, seed=5, prompts_per_batch=prompts_per_batch)
        geneval.run_geneval(model, backbone, geneval_metadata, tmp_path / name, settings)
        return _files(tmp_path / name)

    one = run("one", prompts_per_batch=1)
    three = run("three", prompts_per_batch=3)
    assert calls == [2, 2, 2, 6]  # three calls of one prompt, then one call of all three
    assert three == one
    samples = [one[f"{i:05d}/samples/{s:04d}.png"] for i in range(3) for s in range(2)]
    assert len(set(samples)) == len(samples)  # every image has its own seed
    # Resuming with yet another batching redraws the lost prompts bit-identically.
    (tmp_path / "three/00000/samples/0001.png").unlink()
    (tmp_path / "three/00002/samples/0000.png").unlink()
    assert run("three", prompts_per_batch=2) == one
    assert calls[4:] == [4]  # only prompts 0 and 2, in one call


def test_geneval_metadata_errors(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tag": "colors", "prompt": ""}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: field 'prompt'"):
        geneval.load_metadata(path)


def test_geneval_summary_matches_the_official_arithmetic(tmp_path):
    rows = [("single_object", True), ("single_object", False), ("single_object", True), ("single_object", True)]
    rows += [("counting", False), ("counting", True)]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps({"tag": t, "correct": c, "filename": "x.png"}) + "\n" for t, c in rows))
    summary = geneval.summarize_results(results, model="m")
    # per tag: 3/4 and 1/2; overall = mean over tags = 0.625; over images = 4/6
    assert summary.metrics["per_tag"] == {"single_object": 0.75, "counting": 0.5}
    assert summary.headline == 0.625 and summary.metrics["image_accuracy"] == 0.6667
    geneval.main(["summarize", "--results", str(results), "--out_dir", str(tmp_path / "summary")])
    assert json.loads((tmp_path / "summary/results.json").read_text())["headline"] == 0.625


@pytest.fixture
def wise_files(tmp_path):
    culture = tmp_path / "cultural_common_sense.json"
    science = tmp_path / "natural_science.json"
    culture.write_text(
        json.dumps([{"prompt_id": i, "Prompt": f"culture prompt {i}", "Subcategory": "x"} for i in (1, 2)])
    )
    science.write_text(json.dumps([{"prompt_id": 701, "Prompt": "a science prompt", "Subcategory": "Biology"}]))
    return culture, science


def test_wise_writes_prompt_id_pngs_seeded_by_prompt_id(tiny_backbone, wise_files, tmp_path, count_calls):
    model, backbone = tiny_backbone
    calls = count_calls("sample_image_tokens")
    settings = GenerationSettings(samples_per_prompt=1, seed=3)
    wise.run_wise(model, backbone, wise_files, tmp_path / "all", settings)
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        ".lock",
        "1.png",
        "2.png",
        "701.png",
        "run_key.json",
    ]
    wise.run_wise(model, backbone, wise_files[1:], tmp_path / "science", settings)
    # The seed follows the prompt id, so the image does not depend on which files were passed.
    assert (tmp_path / "science/701.png").read_bytes() == (tmp_path / "all/701.png").read_bytes()
    (tmp_path / "all/2.png").unlink()
    before = len(calls)
    wise.run_wise(model, backbone, wise_files, tmp_path / "all", settings)
    assert len(calls) == before + 1


def test_wise_input_errors(wise_files, tmp_path):
    with pytest.raises(ValueError, match="prompt_id 1 appears twice"):
        wise.load_prompts([wise_files[0], wise_files[0]])
    with pytest.raises(ValueError, match="one image per prompt"):
        wise.run_wise(None, None, wise_files, tmp_path, GenerationSettings(samples_per_prompt=4))
