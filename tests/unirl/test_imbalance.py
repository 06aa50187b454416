"""UniRL imbalance (open_r1/evaluation/imbalance.py, scripts/eval_imbalance.py) on a hand-made GenEval run."""

import json

import pytest
from PIL import Image

from open_r1.evaluation.imbalance import imbalance_metrics, main, run_imbalance

# The authors' QA format: GenEval metadata + one free-form question/answer per tag.
QA = [
    {"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}],
     "prompt": "a photo of two clocks", "question": "How many items in this image?", "answer": "two clocks"},
    {"tag": "colors", "include": [{"class": "bench", "count": 1, "color": "red"}], "prompt": "a photo of a red bench",
     "question": "What color is the bench?", "answer": "red"},
]  # fmt: skip
# (folder, sample, tag, prompt, correct by the detector)
SCORED = [
    ("00000", 0, "counting", "a photo of two clocks", True),
    ("00000", 1, "counting", "a photo of two clocks", True),
    ("00000", 2, "counting", "a photo of two clocks", False),
    ("00001", 0, "colors", "a photo of a red bench", True),
    ("00001", 1, "colors", "a photo of a red bench", False),
]


def _scorer_line(folder, sample, tag, prompt, correct, imagedir="/data/geneval_out"):
    meta = next(q for q in QA if q["prompt"] == prompt)
    row = {"filename": f"{imagedir}/{folder}/samples/{sample:04d}.png", "tag": tag, "prompt": prompt,
           "correct": correct, "reason": "" if correct else "expected clock>=2, found 1",
           "metadata": json.dumps({k: meta[k] for k in ("tag", "include", "prompt") if k in meta}), "details": "{}"}  # fmt: skip
    # pandas' to_json (what evaluate_images.py uses) escapes slashes.
    return json.dumps(row).replace("/", "\\/")


@pytest.fixture
def geneval_run(tmp_path):
    images = tmp_path / "images"
    for folder, sample, *_ in SCORED:
        (images / folder / "samples").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (200, 30, 30)).save(images / folder / "samples" / f"{sample:04d}.png")
    results = tmp_path / "results.jsonl"
    results.write_text("".join(_scorer_line(*s) + "\n" for s in SCORED))
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(q) + "\n" for q in QA))
    return images, results, qa


def test_imbalance_counts_against_hand_computation(geneval_run, tmp_path):
    images, results, qa = geneval_run
    predictions = {"00000/0000": "2 clocks", "00000/0001": "three clocks", "00001/0000": "Red."}
    asked = []

    def answer(items, log):
        asked.extend(item.id for item in items)
        assert all(item.load_image().size == (32, 32) for item in items)  # the images of this run's folders
        return [{**item.meta, "id": item.id, "question": item.question, "answer": item.answer,
                 "prediction": predictions[item.id]} for item in items]  # fmt: skip

    result = run_imbalance(answer, results, images, qa, tmp_path / "out")
    assert sorted(asked) == sorted(predictions)  # only the detector-correct images are asked
    # counting: 2 correct images, "three clocks" wrong -> 1/2; colors: 1 correct image, right -> 0; overall 1/3.
    assert result.metrics["counting"] == {"correct_images": 2, "answered_wrong": 1, "imbalance": 0.5}
    assert result.metrics["colors"] == {"correct_images": 1, "answered_wrong": 0, "imbalance": 0.0}
    assert result.metrics["overall"]["imbalance"] == pytest.approx(1 / 3) and result.headline == pytest.approx(1 / 3)


def test_missing_question_and_bad_filename_name_the_fix(geneval_run, tmp_path):
    images, results, qa = geneval_run
    qa.write_text(json.dumps(QA[0]) + "\n")
    with pytest.raises(ValueError, match="no question for tag 'colors'"):
        run_imbalance(lambda items, log: [], results, images, qa, tmp_path / "o")
    results.write_text(json.dumps({"filename": "x.png", "tag": "colors", "correct": True}) + "\n")
    with pytest.raises(ValueError, match=r"results.jsonl:1: filename"):
        run_imbalance(lambda items, log: [], results, images, qa, tmp_path / "o")


def test_cli_with_the_tiny_model_answers_and_resumes(geneval_run, tiny_janus_path, tmp_path):
    images, results, qa = geneval_run
    out = tmp_path / "out"
    args = ["--model_path", str(tiny_janus_path), "--images", str(images), "--results", str(results),
            "--qa", str(qa), "--out_dir", str(out), "--max_new_tokens", "4", "--batch_size", "2"]  # fmt: skip
    result = main(args)
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 3 == result.num_samples
    records = [json.loads(line) for line in lines]
    assert imbalance_metrics([{**r, "answer_correct": False} for r in records])["overall"]["correct_images"] == 3
    assert json.loads((out / "results.json").read_text())["headline"] == result.headline
    main(args)  # resume: nothing is answered twice
    assert (out / "predictions.jsonl").read_text().splitlines() == lines
