"""`load_pair_dataset`: the flat columns PairGRPO reads, absolute image paths, validation errors."""

import json

import pytest
from PIL import Image

from open_r1.dataset import PAIR_COLUMNS, load_pair_dataset

QUESTION = "How many?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer with the option's letter from the given choices directly."


def _write(tmp_path, pairs):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return path


@pytest.fixture
def images(tmp_path):
    (tmp_path / "imgs").mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / "imgs" / name)
    return tmp_path / "imgs"


def test_columns_and_values(tmp_path, images):
    aligned = {"generate_ann": {"image_path": "a.png", "prompt": "two red squares", "question": QUESTION, "answer": "B"},
               "understand_ann": {"image_path": "a.png", "prompt": "two red squares", "question": QUESTION, "answer": "B",
                                  "tag": "counting"}}  # fmt: skip
    retrieved = {"similarity": 0.66, "pair_type": "retrieved",
                 "generate_ann": {"image_path": "b.png", "prompt": "a blue circle", "tag": "geneval"},
                 "understand_ann": {"image_path": "a.png", "question": QUESTION, "answer": "C", "tag": "counting"}}  # fmt: skip
    ds = load_pair_dataset(_write(tmp_path, [aligned, retrieved]), image_root=images)
    assert tuple(ds.column_names) == PAIR_COLUMNS and len(ds) == 2
    row = ds[1]
    assert row["prompt"] == row["gen_prompt"] == "a blue circle"
    assert row["und_image_path"] == str((images / "a.png").resolve())
    assert row["gen_image_path"] == str((images / "b.png").resolve())
    assert (row["und_question"], row["und_answer"], row["similarity"]) == (QUESTION, "C", pytest.approx(0.66))
    assert (row["pair_type"], row["und_tag"], row["gen_tag"]) == ("retrieved", "counting", "geneval")
    assert ds[0]["pair_type"] == "aligned" and ds[0]["similarity"] == 1.0


def test_errors_name_file_line_and_field(tmp_path, images):
    good = {"similarity": 0.7, "generate_ann": {"image_path": "b.png", "prompt": "p"},
            "understand_ann": {"image_path": "a.png", "question": QUESTION, "answer": "A"}}  # fmt: skip
    bad_answer = json.loads(json.dumps(good))
    bad_answer["understand_ann"]["answer"] = "Z"
    with pytest.raises(ValueError, match=r"pairs\.jsonl:2: understand_ann\.answer: .*fix:"):
        load_pair_dataset(_write(tmp_path, [good, bad_answer]), image_root=images)
    missing = json.loads(json.dumps(good))
    missing["understand_ann"]["image_path"] = "gone.png"
    with pytest.raises(ValueError, match=r"pairs\.jsonl:1: understand_ann\.image_path: image .* not found"):
        load_pair_dataset(_write(tmp_path, [missing]), image_root=images)
    with pytest.raises(ValueError, match="no pairs"):
        load_pair_dataset(_write(tmp_path, []), image_root=images)
