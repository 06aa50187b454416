"""Contract tests of the BAGEL export (no BAGEL code needed): what BAGEL's `t2i_pretrain` / `vlm_sft` readers and the
paired group read, in the types they expect, every pair's halves once, every image once and decodable."""

import io
import json

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from data_tools.export_bagel import IMAGE_MARKER, Layout, main
from tests.data_tools.pairug_fixture import ALIGNED_EVERY, PAIRS, make_pairug, question


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _t2i_rows(out):
    rows = []
    for shard in sorted((out / "t2i").glob("*.parquet")):
        rows += pq.read_table(shard).to_pylist()
    return rows


def test_parquet_shards_schema_and_rows(bagel_export, pairug):
    _, records = pairug
    shards = sorted((bagel_export / "t2i").glob("*.parquet"))
    assert len(shards) == 16 and len(shards) >= 8 * 2  # default: 8 GPUs x 2 workers, one whole file each
    schema = pq.read_schema(shards[0])
    assert [str(schema.field(n).type) for n in ("image", "captions", "pair_id", "tag")] == [
        "binary", "string", "int64", "string"
    ]  # fmt: skip
    assert all(pq.ParquetFile(s).metadata.num_rows == PAIRS // 16 for s in shards)  # round-robin, none empty
    rows = _t2i_rows(bagel_export)
    assert sorted(r["pair_id"] for r in rows) == list(range(PAIRS))
    for row in rows:
        captions = json.loads(row["captions"])  # BAGEL json.loads the cell and draws one of its values
        assert captions == {"prompt": records[row["pair_id"]]["generate_ann"]["prompt"]}
        source = pairug[0].parent / records[row["pair_id"]]["generate_ann"]["image_path"]
        assert row["image"] == source.read_bytes()  # the original bytes, not a re-encoding
        Image.open(io.BytesIO(row["image"])).load()


def test_understanding_jsonl_is_llava_style_with_image_first(bagel_export, pairug):
    _, records = pairug
    lines = _lines(bagel_export / "vlm" / "pairug.jsonl")
    assert [line["id"] for line in lines] == list(range(PAIRS))
    for line, record in zip(lines, records):
        assert isinstance(line["id"], int) and isinstance(line["image"], str)
        human, gpt = line["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt"
        assert human["value"] == f"{IMAGE_MARKER}\n{record['understand_ann']['question']}"
        assert human["value"].count(IMAGE_MARKER) == 1 and gpt["value"] == record["understand_ann"]["answer"]
        image = bagel_export / "images" / line["image"]
        assert image.read_bytes() == (pairug[0].parent / record["understand_ann"]["image_path"]).read_bytes()


def test_paired_jsonl_holds_both_halves_and_shares_aligned_images(bagel_export, pairug):
    _, records = pairug
    paired = _lines(bagel_export / "paired" / "pairug.jsonl")
    vlm = _lines(bagel_export / "vlm" / "pairug.jsonl")
    rows = {r["pair_id"]: r for r in _t2i_rows(bagel_export)}
    assert len(paired) == len(vlm) == len(rows) == len(records) == PAIRS
    for i, (line, record) in enumerate(zip(paired, records)):
        assert line["id"] == i and isinstance(line["similarity"], float)
        assert line["source"].endswith(f"pairs.jsonl:{i + 1}") and line["pair_type"] == record["pair_type"]
        assert line["gen"]["caption"] == record["generate_ann"]["prompt"]
        assert line["und"]["conversations"] == vlm[i]["conversations"] and line["und"]["image"] == vlm[i]["image"]
        gen_bytes = (bagel_export / "images" / line["gen"]["image"]).read_bytes()
        assert gen_bytes == rows[i]["image"]
        assert (line["gen"]["image"] == line["und"]["image"]) == (i % ALIGNED_EVERY == 0)
    images = list((bagel_export / "images").iterdir())
    aligned = PAIRS // ALIGNED_EVERY
    assert len(images) == 2 * PAIRS - aligned  # each distinct image once
    for path in images:
        Image.open(path).load()


def test_dataset_info_and_yamls_agree(bagel_export):
    info = json.loads((bagel_export / "dataset_info.json").read_text())
    paired = yaml.safe_load((bagel_export / "bagel_paired.yaml").read_text())
    mix = yaml.safe_load((bagel_export / "bagel_mix.yaml").read_text())
    for config in (paired, mix):
        for group, args in config.items():
            for name in args["dataset_names"]:
                entry = info[group][name]
                assert (bagel_export / "images").samefile(entry["data_dir"]) or group == "t2i_pretrain"
                assert entry["num_total_samples"] == PAIRS
                if "jsonl_path" in entry:
                    assert len(open(entry["jsonl_path"]).readlines()) == PAIRS
    assert len(list((bagel_export / "t2i").glob("*.parquet"))) == info["t2i_pretrain"]["pairug_gen"]["num_files"]
    group = paired["pairug_paired"]
    assert group["image_transform_args"] == {"image_stride": 16, "max_image_size": 512, "min_image_size": 512}
    assert group["vit_image_transform_args"]["image_stride"] == 14 and group["num_used_data"] == [PAIRS]
    assert group["is_mandatory"] is True
    # The stock mix: U:G 1:1 by samples, both groups in every pack, the frame sampler vlm_sft's class requires.
    assert {g: (a["weight"], a["is_mandatory"]) for g, a in mix.items()} == {
        "t2i_pretrain": (1, True), "vlm_sft": (1, True)
    }  # fmt: skip
    assert mix["vlm_sft"]["frame_sampler_args"] == {"max_num_frames": 12, "min_num_frames": 8}
    assert mix["t2i_pretrain"]["num_used_data"] == [16] and mix["vlm_sft"]["num_used_data"] == [PAIRS]
    assert mix["t2i_pretrain"]["image_transform_args"] == group["image_transform_args"]


def test_report_counts(bagel_export):
    report = json.loads((bagel_export / "export_report.json").read_text())
    aligned = PAIRS // ALIGNED_EVERY
    assert report["counts"]["by_type"] == {"aligned": aligned, "retrieved": PAIRS - aligned}
    assert report["counts"]["t2i_rows"] == report["counts"]["vlm_lines"] == report["counts"]["paired_lines"] == PAIRS
    assert report["counts"]["distinct_images"] == 2 * PAIRS - aligned and report["dropped"]["count"] == 0
    assert [s["rows"] for s in report["shards"]] == [PAIRS // 16] * 16
    assert report["layout"] == {"ranks": 8, "workers": 2, "t2i_files_per_worker": 1, "jsonl_lines_per_worker": 3,
                                "jsonl_lines_never_read": 0}  # fmt: skip


@pytest.mark.parametrize(("units", "per_worker", "unused"), [(48, 3, 0), (40, 2, 8), (15, 0, 15), (16, 1, 0)])
def test_layout_matches_bagels_sharding(units, per_worker, unused):
    layout = Layout(8, 2)  # per rank = units // 8, per worker = that // 2
    assert (layout.per_worker(units), layout.unused(units)) == (per_worker, unused)


def _corrupt(folder):
    path, records = make_pairug(folder, n=20)
    (folder / "images" / "u3.jpg").write_bytes(b"\xff\xd8\xff truncated")  # pair 3 (line 4): a broken JPEG
    records[5]["understand_ann"]["answer"] = "Z"  # not an option letter
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_bad_rows_are_named_and_skippable(tmp_path, capsys):
    path = _corrupt(tmp_path)
    with pytest.raises(SystemExit, match=r"2 invalid line\(s\)") as err:
        main(["--pairs", str(path), "--out", str(tmp_path / "out"), "--ranks", "2", "--workers", "1"])
    assert f"{path}:4: understand_ann.image_path" in str(err.value)
    assert f"{path}:6: understand_ann.answer" in str(err.value) and "--skip-invalid" in str(err.value)
    assert not (tmp_path / "out").exists()
    report = main(["--pairs", str(path), "--out", str(tmp_path / "out"), "--ranks", "2", "--workers", "1",
                   "--skip-invalid"])  # fmt: skip
    assert report["counts"]["pairs"] == 18 and report["dropped"]["count"] == 2
    assert [m.split(": ")[0] for m in report["dropped"]["lines"]] == [f"{path}:4", f"{path}:6"]
    assert len(_lines(tmp_path / "out" / "paired" / "pairug.jsonl")) == 18
    assert "18 pairs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--num-shards", "12"], "multiple of 16"), (["--num-shards", "8"], "multiple of 16"),
     (["--ranks", "8", "--workers", "4"], "cannot fill 32 shards")],
)  # fmt: skip
def test_shard_counts_that_would_starve_or_skip_workers_are_refused(tmp_path, flags, message):
    path, _ = make_pairug(tmp_path, n=20)
    with pytest.raises(SystemExit, match=message):
        main(["--pairs", str(path), "--out", str(tmp_path / "out"), *flags])
    assert not (tmp_path / "out").exists()


def test_existing_output_needs_overwrite_and_is_replaced_whole(tmp_path):
    path, records = make_pairug(tmp_path, n=4)
    argv = ["--pairs", str(path), "--out", str(tmp_path / "out"), "--ranks", "2", "--workers", "2"]
    main(argv)
    with pytest.raises(SystemExit, match="--overwrite"):
        main(argv)
    path.write_text("".join(json.dumps(r) + "\n" for r in records[:2] + records))  # now 6 pairs
    main([*argv, "--overwrite", "--num-shards", "4"])
    assert len(_lines(tmp_path / "out" / "vlm" / "pairug.jsonl")) == 6
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out"]  # no .partial/.old


def test_stray_image_markers_are_removed_from_questions(tmp_path):
    path, records = make_pairug(tmp_path, n=4)
    records[1]["understand_ann"]["question"] = "<image>" + question(1)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = main(["--pairs", str(path), "--out", str(tmp_path / "out"), "--ranks", "2", "--workers", "2"])
    human = _lines(tmp_path / "out" / "vlm" / "pairug.jsonl")[1]["conversations"][0]["value"]
    assert human == f"{IMAGE_MARKER}\n{question(1)}" and report["counts"]["questions_with_image_markers_removed"] == 1


def test_random_pairs_ablation_exports_through_the_same_path(tmp_path):
    from data_tools.random_pairs import main as random_main

    path, _ = make_pairug(tmp_path, n=8)
    shuffled = tmp_path / "random.jsonl"
    random_main(["--pairs", str(path), "--output", str(shuffled), "--random-init", "--image-size", "32",
                 "--work-dir", str(tmp_path / "work")])  # fmt: skip
    report = main(["--pairs", str(shuffled), "--out", str(tmp_path / "out"), "--name", "random",
                   "--ranks", "2", "--workers", "2"])  # fmt: skip
    assert report["counts"]["by_type"] == {"random": 8} and report["counts"]["pairs"] == 8
    paired = _lines(tmp_path / "out" / "paired" / "random.jsonl")
    assert all(line["gen"]["image"] != line["und"]["image"] for line in paired)  # no pair keeps its partner
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert set(info["pairug_paired"]) == {"random"} and set(info["vlm_sft"]) == {"random_und"}


def test_a_missing_pair_file_is_named_with_the_fix(tmp_path):
    with pytest.raises(SystemExit, match=r"missing\.jsonl: file not found; fix: point --pairs"):
        main(["--pairs", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
