"""Random pairs for the pairing ablation: same pools and count, no original partner kept, seeded, similarity from
the builder's features, loadable with `--pair_types random`."""

import json

import numpy as np
import pytest
from PIL import Image

from data_tools.features import EncoderConfig, compute_features
from data_tools.random_pairs import derangement, main
from data_tools.validate import validate_file
from open_r1.dataset import load_pair_dataset

QUESTION = "Colour?\nA. red\nB. blue\nAnswer with the option's letter from the given choices directly."


@pytest.mark.parametrize("n", [2, 3, 7, 50])
def test_derangement_moves_every_index(n):
    for seed in range(20):
        perm = derangement(n, seed)
        assert sorted(perm) == list(range(n)) and not np.any(perm == np.arange(n))
    assert derangement(n, 1).tolist() == derangement(n, 1).tolist()


@pytest.fixture
def pair_file(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    pairs = []
    for i in range(6):
        for side in ("g", "u"):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / f"{side}{i}.png")
        pairs.append({"similarity": 0.7, "pair_type": "retrieved",
                      "generate_ann": {"image_path": f"images/g{i}.png", "prompt": f"prompt {i}", "tag": "geneval"},
                      "understand_ann": {"image_path": f"images/u{i}.png", "question": QUESTION, "answer": "AB"[i % 2],
                                         "tag": "counting"}})  # fmt: skip
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return path


def _run(pair_file, output, seed):
    main(["--pairs", str(pair_file), "--output", str(output), "--seed", str(seed), "--random-init",
          "--image-size", "32", "--work-dir", str(pair_file.parent / "work")])  # fmt: skip
    return [json.loads(x) for x in output.read_text().splitlines()]


def test_random_pairs_same_pools_new_partners(pair_file, tmp_path, capsys):
    shuffled = _run(pair_file, tmp_path / "out" / "random.jsonl", seed=3)
    assert "wrote 6 random pairs" in capsys.readouterr().out
    original = [json.loads(x) for x in pair_file.read_text().splitlines()]
    assert len(shuffled) == len(original) and {p["pair_type"] for p in shuffled} == {"random"}
    gen_of = {p["generate_ann"]["prompt"]: p["understand_ann"]["image_path"] for p in original}
    for pair in shuffled:  # every prompt keeps its sample, none keeps its partner
        assert not pair["understand_ann"]["image_path"].endswith(gen_of[pair["generate_ann"]["prompt"]])
    assert sorted(p["generate_ann"]["prompt"] for p in shuffled) == [f"prompt {i}" for i in range(6)]
    assert sorted(p["understand_ann"]["image_path"] for p in shuffled) == sorted(
        str(pair_file.parent / p["understand_ann"]["image_path"]) for p in original
    )
    # similarity = cosine of the builder's ResNet-50 features (same random-init encoder, seed 3)
    first = shuffled[0]
    feats = compute_features([first["generate_ann"]["image_path"], first["understand_ann"]["image_path"]],
                             EncoderConfig(random_init=True, seed=3, image_size=32))  # fmt: skip
    assert first["similarity"] == pytest.approx(float(feats[0] @ feats[1]), abs=1e-5)
    assert len({p["similarity"] for p in shuffled}) > 1
    again = _run(pair_file, tmp_path / "again.jsonl", seed=3)
    assert again == shuffled and _run(pair_file, tmp_path / "other.jsonl", seed=4) != shuffled
    out = tmp_path / "out" / "random.jsonl"
    assert validate_file(out)[0] == [] and json.loads(out.with_suffix(".summary.json").read_text())["by_type"] == {
        "random": 6
    }
    assert load_pair_dataset(out, pair_types=["random"])["pair_type"] == ["random"] * 6


def test_output_never_replaces_the_pairs_file_or_an_existing_output(pair_file, tmp_path):
    """Issue 25: --output equal to --pairs (or any existing file) was overwritten with exit 0."""
    before = pair_file.read_bytes()
    with pytest.raises(SystemExit, match="is the --pairs file"):
        _run(pair_file, pair_file, seed=0)
    assert pair_file.read_bytes() == before
    existing = tmp_path / "mine.jsonl"
    existing.write_text("user data\n")
    with pytest.raises(SystemExit, match="already exists; pass --overwrite"):
        _run(pair_file, existing, seed=0)
    assert existing.read_text() == "user data\n"
    main(["--pairs", str(pair_file), "--output", str(existing), "--random-init", "--image-size", "32",
          "--work-dir", str(tmp_path / "work"), "--overwrite"])  # fmt: skip
    assert len(existing.read_text().splitlines()) == 6
