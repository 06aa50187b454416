"""Local-copy converters: Orsta parquet (verl format, detection/grounding dropped) and BLIP3o tar shards."""

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from data_tools.jsonl import load_generation, load_understanding
from data_tools.sources import main


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def test_orsta_parquet_to_understanding_jsonl(tmp_path):
    question = "<image>How many apples?\nA. 1\nB. 2\nAnswer with the option's letter from the given choices directly."
    rows = [
        {"prompt": [{"role": "user", "content": question}], "images": [{"bytes": _png()}],
         "reward_model": {"ground_truth": "B", "style": "rule"}, "ability": "counting", "data_source": "clevr"},
        {"prompt": [{"role": "user", "content": "<image>Box the dog."}], "images": [{"bytes": _png()}],
         "reward_model": {"ground_truth": "[1,2,3,4]", "style": "rule"}, "ability": "detection", "data_source": "coco"},
    ]  # fmt: skip
    (tmp_path / "src").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "src" / "train_counting.parquet")
    main(["orsta", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    samples, _ = load_understanding(tmp_path / "out" / "understanding.jsonl")
    assert len(samples) == 1  # the detection row is dropped
    assert (
        samples[0].question.startswith("How many apples?")
        and samples[0].answer == "B"
        and samples[0].tag == "counting"
    )


def test_blip3o_tar_to_generation_jsonl(tmp_path):
    (tmp_path / "src").mkdir()
    with tarfile.open(tmp_path / "src" / "geneval_00.tar", "w") as tar:
        for name, data in [
            ("0001.jpg", _png()),
            ("0001.txt", b"a photo of a towel and a zebra"),
            ("0002.txt", b"orphan"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    main(["blip3o", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    samples, _ = load_generation(tmp_path / "out" / "generation.jsonl")
    assert [(s.prompt, s.tag) for s in samples] == [("a photo of a towel and a zebra", "geneval_00")]
    assert json.loads((tmp_path / "out" / "generation.jsonl").read_text())["id"] == "geneval_00/0001"
