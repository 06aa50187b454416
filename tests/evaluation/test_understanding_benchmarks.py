"""MMMU, MMStar, MME and POPE drivers: loaders on fixtures written in each benchmark's published format, scoring
arithmetic on hand-made predictions, and end-to-end runs (resume included) with the tiny model."""

import base64
import json

import pandas as pd
import pytest

from open_r1.evaluation import mme, mmmu, mmstar, pope
from open_r1.evaluation.common import AnswerSettings

SETTINGS = AnswerSettings(batch_size=4, max_new_tokens=4)


# ------------------------------------------------------------------------------------------------------------ MMMU


def test_mmmu_loader_builds_prompts_and_composes_images(mmmu_dir):
    items = {item.id: item for item in mmmu.load_items([mmmu_dir])}
    assert list(items) == ["validation_Art_Theory_1", "validation_Art_Theory_2", "validation_Math_1"]
    first = items["validation_Art_Theory_1"]
    assert first.question == "Who painted the image?\nA. Monet\nB. Manet\n" + mmmu.MC_INSTRUCTION
    assert first.meta["subject"] == "Art_Theory" and first.load_image().size == (40, 30)
    second = items["validation_Art_Theory_2"]
    assert second.question.splitlines() == [
        "The picture shows 2 images side by side, from left to right: image 1, image 2.",
        "Which is older?",
        "A. image 1",
        "B. image 2",
        mmmu.MC_INSTRUCTION,
    ]
    # 20x30 and 60x60 scaled to height 60: 40 + 4 (gap) + 60 wide.
    assert second.load_image().size == (104, 60)
    assert items["validation_Math_1"].question == "Solve the image.\n" + mmmu.OPEN_INSTRUCTION


def test_mmmu_scoring_official_headline_and_strict_beside_it():
    def mc(item_id, answer, prediction):
        return {"id": item_id, "subject": "Art", "question_type": "multiple-choice", "options": ["x", "y"]} | {
            "answer": answer,
            "prediction": prediction,
        }

    def open_ended(item_id, answer, prediction):
        return {"id": item_id, "subject": "Math", "question_type": "open", "options": []} | {
            "answer": answer,
            "prediction": prediction,
        }

    records = [
        mc("validation_Art_1", "B", "B"),
        mc("validation_Art_2", "A", "y"),  # option B's text: parsed as B, wrong
        mc("validation_Art_4", "A", "?"),  # unparseable: the seeded guess for this id is A (right)
        mc("validation_Art_3", "A", "?"),  # unparseable: the seeded guess for this id is B (wrong)
        open_ended("validation_Math_1", "['3.5', '7/2']", "<think>half of 7</think><answer>3.50</answer>"),
        open_ended("validation_Math_2", "12", "13"),
    ]
    assert mmmu.random_option("validation_Art_4", ["x", "y"]) == "A"
    assert mmmu.random_option("validation_Art_3", ["x", "y"]) == "B"
    metrics = mmmu.score(records)
    # official: Art_1, Art_4 (guess), Math_1 right = 3/6; strict: Art_1, Math_1 = 2/6.
    assert metrics["accuracy"] == 50.0 and metrics["strict"]["accuracy"] == 33.33
    assert metrics["per_subject"] == {"Art": 50.0, "Math": 50.0}
    assert metrics["strict"]["per_subject"] == {"Art": 25.0, "Math": 50.0}
    assert metrics["per_question_type"] == {"multiple-choice": 50.0, "open": 50.0}
    assert metrics["strict"]["per_question_type"] == {"multiple-choice": 25.0, "open": 50.0}
    assert metrics["unparsed_multiple_choice"] == 2 and metrics["headline_rule"].startswith("official")
    assert mmmu.score(records[::-1]) == metrics  # the guess depends on the id, not on the order


def test_mmmu_end_to_end_and_cli(tiny_janus_path, mmmu_dir, tmp_path):
    out = tmp_path / "mmmu_out"
    args = ["--model_path", str(tiny_janus_path), "--data", str(mmmu_dir), "--out_dir", str(out)]
    mmmu.BENCHMARK.main([*args, "--batch_size", "2", "--max_new_tokens", "3", "--device", "cpu"])
    result = json.loads((out / "results.json").read_text())
    assert result["benchmark"] == "mmmu" and result["num_samples"] == 3
    assert result["settings"]["max_new_tokens"] == 3
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == [
        "validation_Art_Theory_1",
        "validation_Art_Theory_2",
        "validation_Math_1",
    ]
    assert result["headline"] == mmmu.score(predictions)["accuracy"]


# ----------------------------------------------------------------------------------------------------------- MMStar


def test_mmstar_options_and_per_category_scores(tmp_path, png):
    question = "What is shown?\nOptions: A: a cat, B: a dog, sleeping, C: a bird, D: a fish"
    assert mmstar.parse_options(question) == {"A": "a cat", "B": "a dog, sleeping", "C": "a bird", "D": "a fish"}
    rows = [
        {
            "index": i,
            "question": question,
            "answer": answer,
            "category": category,
            "l2_category": "l2",
            "image": base64.b64encode(png()).decode(),
        }
        for i, (answer, category) in enumerate([("A", "coarse"), ("B", "coarse"), ("C", "math")])
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "MMStar.tsv", sep="\t", index=False)
    items = mmstar.load_items([tmp_path / "MMStar.tsv"])
    assert items[0].question == question + "\n" + mmstar.INSTRUCTION and items[0].load_image().size == (40, 30)
    predictions = ["A", "a dog, sleeping", "The answer is B."]
    records = [{**item.meta, "answer": item.answer, "prediction": p} for item, p in zip(items, predictions)]
    metrics = mmstar.score(records)
    assert metrics["accuracy"] == 66.67
    assert metrics["per_category"] == {"coarse": 100.0, "math": 0.0}
    assert metrics["per_l2_category"] == {"coarse/l2": 100.0, "math/l2": 0.0}


# -------------------------------------------------------------------------------------------------------------- MME


def test_mme_accuracy_plus_and_perception_score():
    def record(subtask, image, answer, prediction):
        return {"subtask": subtask, "image_key": f"{subtask}/{image}", "answer": answer, "prediction": prediction}

    records = [
        record("existence", "1.png", "yes", "Yes"),
        record("existence", "1.png", "no", "No."),
        record("existence", "2.png", "yes", "yes"),
        record("existence", "2.png", "no", "Yes, it is."),
        record("count", "3.png", "yes", "I am not sure."),
        record("count", "3.png", "no", "yes"),
        record("code_reasoning", "4.png", "yes", "<think>run it</think><answer>yes</answer>"),
        record("code_reasoning", "4.png", "no", "no"),
    ]
    metrics = mme.score(records)
    # existence: 3/4 questions, 1/2 images -> 75 + 50; count: 0 + 0; code_reasoning: 100 + 100.
    assert metrics["subtasks"]["existence"] == {"acc": 75.0, "acc_plus": 50.0, "score": 125.0}
    assert metrics["subtasks"]["count"] == {"acc": 0.0, "acc_plus": 0.0, "score": 0.0}
    assert metrics["perception"] == 125.0 and metrics["cognition"] == 200.0
    assert "ocr" in metrics["missing_subtasks"]


@pytest.fixture
def mme_parquet(tmp_path, png):
    rows = []
    for image, category in (("a.png", "existence"), ("b.png", "OCR"), ("c.png", "code_reasoning")):
        for answer in ("Yes", "No"):
            rows.append(
                {
                    "question_id": image,
                    "question": f"Is it {answer}? Please answer yes or no.",
                    "answer": answer,
                    "category": category,
                    "image": {"bytes": png(), "path": image},
                }
            )
    path = tmp_path / "test-00000-of-00001.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_mme_loader_and_resumed_run(tiny_backbone, mme_parquet, tmp_path, count_calls):
    model, backbone = tiny_backbone
    items = mme.load_items([mme_parquet])
    assert [i.meta["subtask"] for i in items] == ["existence"] * 2 + ["ocr"] * 2 + ["code_reasoning"] * 2
    assert items[0].meta["image_key"] == items[1].meta["image_key"] == "existence/a.png"
    assert items[0].answer == "yes" and len({i.id for i in items}) == 6
    calls = count_calls("sample_answer_tokens")
    out = tmp_path / "mme_out"
    first = mme.BENCHMARK.run(model, backbone, [mme_parquet], out, SETTINGS)
    predictions = out / "predictions.jsonl"
    lines = predictions.read_text().splitlines(keepends=True)
    predictions.write_text("".join(lines[:3]) + lines[3][:20])  # killed while writing the 4th line
    result = mme.BENCHMARK.run(model, backbone, [mme_parquet], out, SETTINGS)
    assert calls == [4, 2, 3]  # the resumed run answered only the 3 lost questions
    assert predictions.read_text().splitlines(keepends=True) == lines  # the same answers, byte for byte
    assert result == first and set(result.metrics["subtasks"]) == {"existence", "ocr", "code_reasoning"}
    with pytest.raises(ValueError, match="not an MME subtask"):
        mme.subtask_name("landscape")


# ------------------------------------------------------------------------------------------------------------- POPE


def test_pope_binary_metrics_by_hand():
    predictions = ["yes", "yes", "no", None, "yes", "no"]
    labels = ["yes", "no", "no", "yes", "yes", "yes"]
    metrics = pope.binary_metrics(predictions, labels)
    # tp = 2, fp = 1, tn = 1, fn = 2 (one unparsed): P = 2/3, R = 2/4, F1 = 2*2 / (2*2 + 1 + 2) = 4/7.
    assert metrics == {
        "accuracy": 50.0,
        "precision": 66.67,
        "recall": 50.0,
        "f1": 57.14,
        "yes_ratio": 50.0,
        "unparsed": 1,
        "count": 6,
    }


def test_pope_reads_official_json_and_hub_parquet(tmp_path, png):
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco/COCO_val2014_000000000001.jpg").write_bytes(png("white"))
    for split in ("random", "adversarial"):
        lines = [
            {
                "question_id": q,
                "image": "COCO_val2014_000000000001.jpg",
                "text": "Is there a dog in the image?",
                "label": label,
            }
            for q, label in ((1, "yes"), (2, "no"))
        ]
        (tmp_path / f"coco_pope_{split}.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    items = pope.load_items(
        [tmp_path / "coco_pope_random.json", tmp_path / "coco_pope_adversarial.json"], image_root=tmp_path / "coco"
    )
    assert [i.id for i in items] == ["random/1", "random/2", "adversarial/1", "adversarial/2"]
    assert items[0].question == "Is there a dog in the image?\n" + pope.INSTRUCTION
    assert items[0].load_image().getpixel((0, 0)) == (255, 255, 255)
    hub = pd.DataFrame(
        [
            {
                "question_id": "7",
                "question": "Is there a cat?",
                "answer": "no",
                "category": "popular",
                "image": {"bytes": png(), "path": None},
            }
        ]
    )
    hub.to_parquet(tmp_path / "test-00000.parquet")
    (item,) = pope.load_items([tmp_path / "test-00000.parquet"])
    assert item.id == "popular/7" and item.meta == {"split": "popular"} and item.answer == "no"


def test_pope_score_averages_splits():
    records = [
        {"split": "random", "answer": "yes", "prediction": "Yes"},
        {"split": "random", "answer": "no", "prediction": "No"},
        {"split": "popular", "answer": "yes", "prediction": "No"},
        {"split": "popular", "answer": "no", "prediction": "No"},
    ]
    metrics = pope.score(records)
    assert metrics["splits"]["random"]["f1"] == 100.0 and metrics["splits"]["popular"]["f1"] == 0.0
    assert metrics["f1"] == 50.0 and metrics["accuracy"] == 75.0


@pytest.mark.parametrize(
    ("completion", "official", "strict"),
    [
        ("Yes, there is a dog.", "yes", "yes"),
        ("No.", "no", "no"),
        ("There is not a dog in the image.", "no", None),
        ("no, it isn't", "no", "no"),
        ("Yes. No other animals.", "yes", "yes"),  # only the first sentence counts
        ("I don't know.", "yes", None),  # anything without no/not is "yes" under the official rule
        ("NO", "yes", "no"),  # the official word match is case-sensitive
    ],
)
def test_pope_official_rule(completion, official, strict):
    assert pope.official_yes_no(completion) == official
    assert pope.extract_yes_no(completion) == strict


def test_pope_official_headline_with_strict_beside_it_by_hand():
    labels = ["yes", "no", "no", "yes"]
    predictions = ["Yes, there is one.", "There is not.", "I don't know.", "Nope"]
    records = [{"split": "random", "answer": a, "prediction": p} for a, p in zip(labels, predictions)]
    metrics = pope.score(records)
    # official: yes, no, yes, yes -> tp 2, fp 1, tn 1, fn 0: acc 3/4, P 2/3, R 1, F1 4/5, yes-ratio 3/4.
    official = metrics["splits"]["random"]
    assert (official["accuracy"], official["precision"], official["recall"]) == (75.0, 66.67, 100.0)
    assert (official["f1"], official["yes_ratio"], metrics["f1"]) == (80.0, 75.0, 80.0)
    # strict: yes, -, -, - -> tp 1, fp 0, fn 1 (+ 2 unparsed): acc 1/4, P 1, R 1/2, F1 2/3.
    strict = metrics["strict"]["splits"]["random"]
    assert (strict["accuracy"], strict["precision"], strict["recall"], strict["f1"]) == (25.0, 100.0, 50.0, 66.67)
    assert metrics["strict"]["f1"] == 66.67 and strict["unparsed"] == 3
    assert metrics["headline_rule"].startswith("official") and pope.BENCHMARK.headline_metric == "f1"


def test_mmstar_hub_folder_with_parquet_and_tsv_loads_each_item_once(tmp_path, png):
    question = "What is shown?\nOptions: A: a cat, B: a dog"
    rows = [
        {"index": i, "question": question, "answer": a, "category": "c", "l2_category": "l"}
        for i, a in enumerate("ABA")
    ]
    parquet = pd.DataFrame([r | {"image": {"bytes": png(), "path": None}} for r in rows])
    parquet.to_parquet(tmp_path / "mmstar.parquet")
    tsv = pd.DataFrame([r | {"image": base64.b64encode(png()).decode()} for r in rows])
    tsv.to_csv(tmp_path / "MMStar.tsv", sep="\t", index=False)
    items = mmstar.load_items([tmp_path])
    assert [(i.id, i.answer) for i in items] == [("0", "A"), ("1", "B"), ("2", "A")]
    assert [i.id for i in mmstar.load_items([tmp_path], limit=2)] == ["0", "1"]
    tsv.assign(answer=list("ABB")).to_csv(tmp_path / "MMStar.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"mmstar.parquet:index=2: answer 'A' differs from 'B'"):
        mmstar.load_items([tmp_path])


def test_mme_tsv_image_cells_that_name_another_rows_index_are_resolved(tmp_path, png):
    image = base64.b64encode(png("blue", (20, 10))).decode()
    rows = [
        {"index": 1, "image": image, "question": "Blue?", "answer": "Yes", "category": "color"},
        {"index": 2, "image": "1", "question": "Red?", "answer": "No", "category": "color"},
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "MME.tsv", sep="\t", index=False)
    first, second = mme.load_items([tmp_path / "MME.tsv"])
    assert second.load_image().getpixel((0, 0)) == (0, 0, 255) and second.load_image().size == (20, 10)
    assert first.meta["image_key"] == second.meta["image_key"]  # one image: acc+ pairs its two questions
    rows[1]["image"] = "99"
    pd.DataFrame(rows).to_csv(tmp_path / "MME.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"MME.tsv:row 1: image cell '99' names no row's index"):
        mme.load_items([tmp_path / "MME.tsv"])
