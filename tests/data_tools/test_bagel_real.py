"""The BAGEL export read by BAGEL's REAL data classes (`data/` of a ByteDance-Seed/Bagel checkout), and the paired
group + packer installed into them. Skipped unless BAGEL_ROOT points at a checkout; see docs/bagel.md for the env:

    BAGEL_ROOT=/path/to/Bagel python -m pytest tests/data_tools/test_bagel_real.py -q
"""

import ast
import importlib.util
import json
import os
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from tests.data_tools.pairug_fixture import IMAGE_SHAPES, PAIRS

if not os.environ.get("BAGEL_ROOT"):
    pytest.skip("BAGEL_ROOT is not set (a ByteDance-Seed/Bagel checkout)", allow_module_level=True)

BAGEL_ROOT = Path(os.environ["BAGEL_ROOT"]).resolve()
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BAGEL_ROOT))  # BAGEL's `data` package, as its trainer imports it

from data.data_utils import add_special_tokens  # noqa: E402
from data.dataset_base import DataConfig, collate_wrapper  # noqa: E402
from data.dataset_base import PackedDataset as _Packed  # noqa: E402
from data.t2i_dataset import T2IIterableDataset  # noqa: E402
from data.transforms import ImageTransform  # noqa: E402
from data.video_utils import FrameSampler  # noqa: E402
from data.vlm_dataset import SftJSONLIterableDataset  # noqa: E402

from data_tools.export_bagel import FRAME_SAMPLER, VAE_TRANSFORM, VIT_TRANSFORM  # noqa: E402
from scripts import bagel_paired  # noqa: E402

STOCK_PACKED = getattr(_Packed, "_bagel_original", _Packed)  # the stock packer even if `install` already ran
# Generation tensors [3, H, W] at 512 px per fixture shape (w, h): long side 512, short side up to 512, stride 16.
VAE_SIZES = {(48, 48): (512, 512), (30, 70): (512, 224), (64, 40): (320, 512), (50, 50): (512, 512)}
# The trainer's values (pretrain_unified_navit.py ModelArguments) where DataConfig's defaults differ.
TRAINER_DATA_CONFIG = {"max_latent_size": 64, "text_cond_dropout_prob": 0.1, "vae_cond_dropout_prob": 0.3,
                       "vit_cond_dropout_prob": 0.3}  # fmt: skip
PACK_BUDGET = {"expected_num_tokens": 10240, "max_num_tokens": 11520, "max_num_tokens_per_sample": 10240}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """BAGEL's own Qwen2 tokenizer class (loaded by file: `modeling/__init__` needs flash_attn) over a byte-level
    vocabulary, with BAGEL's special tokens added as the trainer adds them."""
    path = BAGEL_ROOT / "modeling" / "qwen2" / "tokenization_qwen2.py"
    spec = importlib.util.spec_from_file_location("bagel_tokenization_qwen2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("tokenizer")
    vocab = {char: i for i, char in enumerate(module.bytes_to_unicode().values())}
    (folder / "vocab.json").write_text(json.dumps({**vocab, "<|endoftext|>": len(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = module.Qwen2Tokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tok, special, _ = add_special_tokens(tok)
    return SimpleNamespace(tok=tok, special=special)


@pytest.fixture(scope="module")
def info(bagel_export):
    return json.loads((bagel_export / "dataset_info.json").read_text())


@pytest.fixture(scope="module")
def installed(info):
    bagel_paired.install(BAGEL_ROOT, info)
    return bagel_paired.paired_classes()


def _t2i(info, tok, rank=0, world=1, workers=1):
    entry = info["t2i_pretrain"]["pairug_gen"]
    return T2IIterableDataset("t2i_pretrain", ImageTransform(**VAE_TRANSFORM), tok, [entry["data_dir"]],
                              [entry["num_files"]], rank, world, workers)  # fmt: skip


def _vlm(info, tok, rank=0, world=1, workers=1):
    entry = info["vlm_sft"]["pairug_und"]
    return SftJSONLIterableDataset("vlm_sft", ImageTransform(**VIT_TRANSFORM), tok, FrameSampler(**FRAME_SAMPLER),
                                   [entry["jsonl_path"]], [entry["data_dir"]], [PAIRS], rank, world, workers,
                                   shuffle_lines=True, shuffle_seed=0)  # fmt: skip


def _paired(classes, info, tok, rank=0, world=1, workers=1):
    entry = info["pairug_paired"]["pairug"]
    return classes["PairedSftIterableDataset"](
        "pairug_paired", ImageTransform(**VAE_TRANSFORM), ImageTransform(**VIT_TRANSFORM), tok,
        [entry["jsonl_path"]], [entry["data_dir"]], [PAIRS], rank, world, workers, shuffle_lines=True, shuffle_seed=0,
    )  # fmt: skip


def _first(dataset, n):
    iterator = iter(dataset)
    return [next(iterator) for _ in range(n)]


def _by_id(records):
    return {i: r for i, r in enumerate(records)}


def test_t2i_reads_every_row_once_at_512px(info, tokenizer, pairug):
    records = _by_id(pairug[1])
    prompt_of = {r["generate_ann"]["prompt"]: i for i, r in records.items()}
    samples = _first(_t2i(info, tokenizer.tok), PAIRS)
    captions = [tokenizer.tok.decode(s["text_ids_list"][0]) for s in samples]
    assert Counter(captions) == Counter(prompt_of.keys())  # every row once, caption text intact
    for caption, sample in zip(captions, samples):
        (image,) = sample["image_tensor_list"]
        shape = IMAGE_SHAPES[prompt_of[caption] % len(IMAGE_SHAPES)][0]
        assert tuple(image.shape) == (3, *VAE_SIZES[shape]) and -1.0 <= image.min() <= image.max() <= 1.0
        assert [p["type"] for p in sample["sequence_plan"]] == ["text", "vae_image"]
        assert sample["num_tokens"] == image.shape[1] * image.shape[2] // 256 + len(sample["text_ids_list"][0])


def test_vlm_sft_reads_every_line_once_with_image_question_answer(info, tokenizer, pairug):
    expected = Counter((r["understand_ann"]["question"], r["understand_ann"]["answer"]) for r in pairug[1])
    samples = _first(_vlm(info, tokenizer.tok), PAIRS)
    seen = Counter()
    for sample in samples:
        assert [(p["type"], p["loss"]) for p in sample["sequence_plan"]] == [
            ("vit_image", 0),
            ("text", 0),
            ("text", 1),
        ]
        question, answer = (tokenizer.tok.decode(ids) for ids in sample["text_ids_list"])
        seen[(question, answer)] += 1
        (image,) = sample["image_tensor_list"]
        assert image.shape[1] % 14 == 0 and image.shape[2] % 14 == 0 and min(image.shape[1:]) >= 378
    assert seen == expected


def test_paired_item_halves_equal_the_stock_readers_samples(installed, info, tokenizer):
    tok = tokenizer.tok
    stock_gen = {tok.decode(s["text_ids_list"][0]): s for s in _first(_t2i(info, tok), PAIRS)}
    stock_und = {tok.decode(s["text_ids_list"][0]): s for s in _first(_vlm(info, tok), PAIRS)}
    items = _first(_paired(installed, info, tok), PAIRS)
    assert sorted(item["pair_id"] for item in items) == list(range(PAIRS))  # every pair once
    for item in items:
        und, gen = item[bagel_paired.PAIRED_KEY]
        for half, stock in ((und, stock_und[tok.decode(und["text_ids_list"][0])]),
                            (gen, stock_gen[tok.decode(gen["text_ids_list"][0])])):  # fmt: skip
            assert half["sequence_plan"] == stock["sequence_plan"] and half["num_tokens"] == stock["num_tokens"]
            assert half["text_ids_list"] == stock["text_ids_list"]
            assert torch.equal(half["image_tensor_list"][0], stock["image_tensor_list"][0])
        assert item["num_tokens"] == und["num_tokens"] + gen["num_tokens"]
        assert item["sequence_plan"] == und["sequence_plan"] + gen["sequence_plan"]


def _packed(cls, yaml_path, tok, special):
    config = DataConfig(grouped_datasets=yaml.safe_load(Path(yaml_path).read_text()), **TRAINER_DATA_CONFIG)
    dataset = cls(config, tok, special, local_rank=0, world_size=1, num_workers=1, **PACK_BUDGET)
    dataset.set_epoch(42)  # as the trainer (data_seed)
    return dataset


def test_paired_packer_keeps_each_pair_in_one_pack_as_two_documents(installed, bagel_export, tokenizer, pairug):
    import data.dataset_base as dataset_base

    assert dataset_base.PackedDataset is installed["PairPackedDataset"]  # what the trainer's import now gets
    packed = _packed(dataset_base.PackedDataset, bagel_export / "bagel_paired.yaml", tokenizer.tok, tokenizer.special)
    group = packed.grouped_datasets[0]
    lines = group.data_paths_per_rank[::-1]  # the order one DataLoader worker reads (`get_data_paths_per_worker`)
    answers = {i: r["understand_ann"]["answer"] for i, r in enumerate(pairug[1])}
    loader = torch.utils.data.DataLoader(packed, batch_size=1, num_workers=1, collate_fn=collate_wrapper(),
                                         prefetch_factor=2)  # fmt: skip
    pairs_seen = []
    for _, batch in zip(range(4), loader):
        data = batch.to_dict()
        ids = [json.loads(lines[d["data_indexes"]][0])["id"] for d in data["batch_data_indexes"]]
        n = len(ids)
        assert n >= 2 and len(data["sample_lens"]) == 2 * n == len(data["nested_attention_masks"])
        for mask, length in zip(data["nested_attention_masks"], data["sample_lens"]):
            assert mask.shape == (length, length)  # one mask per document: nothing attends across documents
        assert len(data["vit_token_seqlens"]) == n and data["padded_images"].shape[0] == n  # one image per half
        labels = tokenizer.tok.decode(data["packed_label_ids"].tolist())
        assert labels == "".join(answers[i] + "<|im_end|>" for i in ids)
        pairs_seen += ids
    assert len(pairs_seen) == len(set(pairs_seen)) and sum(data["sample_lens"]) <= PACK_BUDGET["max_num_tokens"]


def test_stock_mix_packs_hold_both_groups(bagel_export, tokenizer):
    packed = _packed(STOCK_PACKED, bagel_export / "bagel_mix.yaml", tokenizer.tok, tokenizer.special)
    iterator = iter(packed)
    for _ in range(3):
        data = next(iterator)
        groups = Counter(d["dataset_name"] for d in data["batch_data_indexes"])
        assert set(groups) == {"t2i_pretrain", "vlm_sft"}
        assert data["padded_images"].shape[:2] == (groups["t2i_pretrain"], 3)
        assert (
            data["packed_vit_tokens"].shape[1] == 14 * 14 * 3 and len(data["vit_token_seqlens"]) == groups["vlm_sft"]
        )


def _worker_units(monkeypatch, dataset, worker, workers):
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: SimpleNamespace(id=worker, num_workers=workers))
    return dataset.get_data_paths_per_worker()[0]


@pytest.mark.parametrize("group", ["t2i", "vlm", "paired"])
def test_no_worker_is_empty_at_8_ranks_x_2_workers_and_each_unit_read_once(monkeypatch, installed, info, tokenizer,
                                                                           group):  # fmt: skip
    build = {"t2i": _t2i, "vlm": _vlm, "paired": lambda *a, **k: _paired(installed, *a, **k)}[group]
    units, pair_ids = [], []
    for rank in range(8):
        dataset = build(info, tokenizer.tok, rank=rank, world=8, workers=2)
        dataset.set_epoch(42)
        for worker in range(2):
            mine = _worker_units(monkeypatch, dataset, worker, 2)
            assert mine, f"rank {rank} worker {worker} has nothing to read"
            units += mine
            if group == "paired":  # the worker's first pass really yields each of its pairs once
                pair_ids += [item["pair_id"] for item in _first(dataset, len(mine))]
    assert len(units) == len(set(units)) == (16 if group == "t2i" else PAIRS)
    if group == "paired":
        assert sorted(pair_ids) == list(range(PAIRS))


def test_launcher_installs_and_hands_the_trainer_its_flags(monkeypatch, bagel_export, info):
    import data.dataset_base as dataset_base
    import data.dataset_info as dataset_info

    from scripts import bagel_launch

    seen = {}
    monkeypatch.setattr(bagel_launch.runpy, "run_path", lambda path, run_name: seen.update(path=path, argv=sys.argv))
    monkeypatch.setattr(sys, "argv", sys.argv)
    monkeypatch.setenv("WORLD_SIZE", "8")
    bagel_launch.main(["--bagel-root", str(BAGEL_ROOT), "--dataset-info", str(bagel_export / "dataset_info.json"),
                       "--recipe", str(REPO / "configs/recipes/bagel_pairug.yaml"),
                       "--dataset_config_file", str(bagel_export / "bagel_paired.yaml"), "--lr", "1e-5"])  # fmt: skip
    assert seen["path"] == str(BAGEL_ROOT / "train" / "pretrain_unified_navit.py")
    assert seen["argv"][-4:] == ["--dataset_config_file", str(bagel_export / "bagel_paired.yaml"), "--lr", "1e-5"]
    assert "--bagel-root" not in seen["argv"] and "--max_latent_size" in seen["argv"]
    assert dataset_info.DATASET_REGISTRY["pairug_paired"].__name__ == "PairedSftIterableDataset"
    assert dataset_info.DATASET_INFO["pairug_paired"]["pairug"] == info["pairug_paired"]["pairug"]
    assert "t2i" in dataset_info.DATASET_INFO["t2i_pretrain"]  # BAGEL's own entries stay
    assert dataset_base.PackedDataset.__name__ == "PairPackedDataset"


def test_recipe_flags_are_fields_of_bagels_trainer():
    tree = ast.parse((BAGEL_ROOT / "train" / "pretrain_unified_navit.py").read_text())
    fields = {node.target.id for cls in tree.body if isinstance(cls, ast.ClassDef)
              and cls.name in ("ModelArguments", "DataArguments", "TrainingArguments")
              for node in cls.body if isinstance(node, ast.AnnAssign)}  # fmt: skip
    recipe = yaml.safe_load((REPO / "configs" / "recipes" / "bagel_pairug.yaml").read_text())
    assert len(fields) > 50 and set(recipe) <= fields, sorted(set(recipe) - fields)
