"""`load_pair_dataset`: the flat columns PairGRPO reads, absolute image paths, validation errors."""

import json

import numpy as np
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
    with pytest.raises(ValueError, match="no valid pairs"):
        load_pair_dataset(_write(tmp_path, []), image_root=images)


def _corrupt_images(folder):
    """A truncated PNG, a 0-byte file and random bytes, as a crashed copy or a bad download leaves them."""
    whole = (folder / "a.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "noise.png").write_bytes(bytes(range(256)) * 4)
    return ["truncated.png", "empty.png", "noise.png"]


def _retrieved(gen_image="b.png", und_image="a.png", pair_type="retrieved"):
    return {"similarity": 0.7, "pair_type": pair_type, "generate_ann": {"image_path": gen_image, "prompt": "p"},
            "understand_ann": {"image_path": und_image, "question": QUESTION, "answer": "A"}}  # fmt: skip


@pytest.fixture
def big_images(tmp_path):
    # Large enough that half the file leaves pixel rows undecoded (a 4x4 PNG fits in its header's first block).
    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype="uint8")).save(tmp_path / "imgs" / name)
    return tmp_path / "imgs"


def test_corrupt_images_fail_before_training_with_the_full_list(tmp_path, big_images):
    bad = _corrupt_images(big_images)
    pairs = [_retrieved(), _retrieved(und_image=bad[0]), _retrieved(gen_image=bad[1]), _retrieved(und_image=bad[2])]
    path = _write(tmp_path, pairs)
    with pytest.raises(ValueError) as info:
        load_pair_dataset(path, image_root=big_images)
    message = str(info.value)
    assert "3 invalid line(s)" in message and "--skip_invalid" in message
    assert "pairs.jsonl:2: understand_ann.image_path" in message and "truncated.png" in message
    assert "pairs.jsonl:3: generate_ann.image_path" in message and "empty.png" in message
    assert "pairs.jsonl:4: understand_ann.image_path" in message and "noise.png" in message


def test_skip_invalid_drops_and_counts_bad_rows(tmp_path, big_images, caplog):
    bad = _corrupt_images(big_images)
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps(_retrieved()), "{not json", json.dumps(_retrieved(und_image=bad[0]))]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"caf\xe9": 1}\n')  # a latin-1 line
    with pytest.raises(ValueError, match=r"pairs\.jsonl:4: <line>: not valid UTF-8.*fix: re-encode"):
        load_pair_dataset(path, image_root=big_images)
    with caplog.at_level("WARNING"):
        ds = load_pair_dataset(path, image_root=big_images, skip_invalid=True)
    assert len(ds) == 1
    assert "skipped 3 invalid line(s)" in caplog.text and "pairs.jsonl:2: <line>: invalid JSON" in caplog.text


def test_pair_types_filter_for_the_pairing_ablation(tmp_path, images):
    pairs = [_retrieved(), _retrieved(pair_type="random"), _retrieved(gen_image="a.png")]
    pairs[2].pop("pair_type")  # inferred as aligned: same image on both sides
    path = _write(tmp_path, pairs)
    assert load_pair_dataset(path, image_root=images, pair_types=["random"])["pair_type"] == ["random"]
    both = load_pair_dataset(path, image_root=images, pair_types=["aligned", "retrieved"])
    assert sorted(both["pair_type"]) == ["aligned", "retrieved"]
    with pytest.raises(ValueError, match="pair_types.*'paired'"):
        load_pair_dataset(path, image_root=images, pair_types=["paired"])


def test_training_flags_parse_into_the_loader_arguments(tmp_path, big_images):
    from trl import TrlParser

    from open_r1.configs import PairScriptArguments

    bad = _corrupt_images(big_images)
    path = _write(tmp_path, [_retrieved(), _retrieved(pair_type="random"), _retrieved(und_image=bad[0])])
    argv = ["--pair_data_path", str(path), "--image_root", str(big_images), "--skip_invalid", "--pair_types", "random"]
    (args,) = TrlParser((PairScriptArguments,)).parse_args_and_config(argv)
    assert (args.skip_invalid, args.pair_types) == (True, ["random"])
    ds = load_pair_dataset(args.pair_data_path, args.image_root, args.skip_invalid, args.pair_types)
    assert ds["pair_type"] == ["random"]
