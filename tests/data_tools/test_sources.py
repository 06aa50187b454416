"""Local-copy converters on fixtures that copy the real layouts: Orsta-Data-47k parquet (verl rows, train/ + test/)
and BLIP3o-60k webdataset tar shards."""

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_tools.jsonl import load_generation, load_understanding
from data_tools.sources import gold_answer, main, sample_key

MCQ = "<image>How many apples?\nA. 1\nB. 2\nAnswer with the option's letter from the given choices directly."

# The published parquet schema (nested types as pyarrow reads them from the hub files).
ORSTA_SCHEMA = pa.schema([
    ("data_source", pa.string()),
    ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
    ("prompt", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
    ("ability", pa.string()),
    ("reward_model", pa.struct([
        ("answer", pa.string()), ("ground_truth", pa.string()), ("accuracy_ratio", pa.float64()),
        ("format_ratio", pa.float64()), ("verifier", pa.string()),
        ("verifier_parm", pa.struct([("det_verifier_normalized", pa.bool_()), ("det_reward_ratio", pa.struct(
            [("iou_max_label_first", pa.float64()), ("iou_completeness", pa.float64())]))])),
    ])),
    ("extra_info", pa.struct([("id", pa.string()), ("image_path", pa.string())])),
])  # fmt: skip


def _image(fmt="PNG", colour=(255, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buf, format=fmt)
    return buf.getvalue()


def _orsta_row(question, answer, ground_truth, ability, row_id, image=None):
    return {
        "data_source": "v-triune", "ability": ability,
        "images": [{"bytes": image or _image(), "path": f"{row_id}.png"}],
        "prompt": [{"content": "You are a helpful assistant.", "role": "system"}, {"content": question, "role": "user"}],
        "reward_model": {"answer": answer, "ground_truth": ground_truth, "accuracy_ratio": 1.0, "format_ratio": 0.0,
                         "verifier": "mathverify", "verifier_parm": {"det_verifier_normalized": None,
                                                                     "det_reward_ratio": None}},
        "extra_info": {"id": row_id, "image_path": f"{row_id}.png"},
    }  # fmt: skip


def _write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=ORSTA_SCHEMA), path)


def test_orsta_gold_answer_train_only_detection_dropped(tmp_path):
    src = tmp_path / "Orsta-Data-47k"
    _write_parquet(src / "train" / "train_math_mmmath_3539.parquet", [
        _orsta_row(MCQ, "B", "\\boxed{B}", "math", "mm-1", image=_image("JPEG")),
        _orsta_row("<image>What is 2 + 2?", "", "\\boxed{4}", "math", "mm-2"),  # empty answer: unboxed ground truth
    ])  # fmt: skip
    _write_parquet(src / "train" / "train_detection_v3det_4000.parquet",
                   [_orsta_row("<image>Box the dog.", "[1,2,3,4]", "[1,2,3,4]", "cv_detection", "det-1")])  # fmt: skip
    _write_parquet(src / "test" / "test_math_mmmath_100.parquet",
                   [_orsta_row("<image>Held-out question?", "7", "\\boxed{7}", "math", "held-out")])  # fmt: skip
    main(["orsta", "--src", str(src), "--out", str(tmp_path / "out")])
    samples, _ = load_understanding(tmp_path / "out" / "understanding.jsonl")
    assert [(s.sample_id, s.answer) for s in samples] == [("train_math_mmmath_3539/mm-1", "B"),
                                                          ("train_math_mmmath_3539/mm-2", "4")]  # fmt: skip
    assert samples[0].question.startswith("How many apples?") and samples[0].tag == "math"
    assert samples[0].image_path.endswith(".jpg") and Image.open(samples[0].image_path).format == "JPEG"


@pytest.mark.parametrize(
    ("reward_model", "gold"),
    [({"answer": "4", "ground_truth": "\\boxed{4}"}, "4"), ({"answer": "", "ground_truth": "\\boxed{x^2}"}, "x^2"),
     ({"answer": None, "ground_truth": "C"}, "C"), ('{"answer": "A", "ground_truth": "\\\\boxed{A}"}', "A")],
)  # fmt: skip
def test_gold_answer_prefers_the_raw_answer(reward_model, gold):
    assert gold_answer(reward_model) == gold


def _tar(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_blip3o_webdataset_keys(tmp_path):
    src = tmp_path / "BLIP3o-60k"
    _tar(src / "geneval_train.tar", [
        ("0001.jpg", _image("JPEG")), ("0001.txt", b"a photo of a towel and a zebra"),
        ("0002.txt", b"orphan"),
        # A dot in a folder name must not cut the key: the key is "shard.v2/0003", not "shard".
        ("shard.v2/0003.jpg", _image("JPEG", (0, 0, 255))), ("shard.v2/0003.txt", b"a blue square"),
        ("shard.v2/0004.jpg", _image("JPEG", (0, 255, 0))), ("shard.v2/0004.txt", b"a green square"),
    ])  # fmt: skip
    main(["blip3o", "--src", str(src), "--out", str(tmp_path / "out")])
    samples, _ = load_generation(tmp_path / "out" / "generation.jsonl")
    assert [(s.sample_id, s.prompt) for s in samples] == [
        ("geneval_train/0001", "a photo of a towel and a zebra"),
        ("geneval_train/shard.v2/0003", "a blue square"),
        ("geneval_train/shard.v2/0004", "a green square"),
    ]
    assert all(s.tag == "geneval_train" for s in samples)
    assert Image.open(samples[1].image_path).getpixel((1, 1))[2] > 200  # each key keeps its own image
    records = [json.loads(x) for x in (tmp_path / "out" / "generation.jsonl").read_text().splitlines()]
    assert records[1]["image_path"] == "images/geneval_train/shard.v2/0003.jpg"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("0001.jpg", ("0001", ".jpg")),
        ("a.b/0001.txt", ("a.b/0001", ".txt")),
        ("x/0001.seg.PNG", ("x/0001", ".seg.png")),
    ],
)
def test_sample_key_cuts_at_the_first_dot_of_the_file_name(name, key):
    assert sample_key(name) == key
