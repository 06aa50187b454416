"""Pair-level batches for BAGEL's own trainer (PairUni App. E): both halves of a PairUG pair in the same pack.

BAGEL's stock groups read the generation and the understanding halves in independent orders, so a pair's halves
never meet. `PairedSftIterableDataset` (group `pairug_paired`) reads one exported line per pair and yields both halves
as ONE item; `PairPackedDataset` packs that item as TWO documents (own `sample_lens` entry, RoPE from 0, no attention
across them: the answer never sees the caption, the noised latent never sees the understanding image).
BAGEL is imported only when the classes are first needed, so this module imports without it; `install` registers
them in BAGEL's dicts at run time and edits none of its files. Runs in BAGEL's environment (Python 3.10).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

PAIRED_GROUP = "pairug_paired"
PAIRED_KEY = "paired_samples"  # the item key `PairPackedDataset.pack_sequence` recognises
CLASS_NAMES = ("PairedSftIterableDataset", "PairPackedDataset")
BAGEL_FILES = ("train/pretrain_unified_navit.py", "data/dataset_base.py", "data/dataset_info.py")
_CLASSES: dict[str, type] = {}


def text_plan(loss: int, enable_cfg: int = 0) -> dict[str, Any]:
    """A text split as BAGEL's readers plan it (no loss on `<|im_end|>`)."""
    return {
        "type": "text",
        "enable_cfg": enable_cfg,
        "loss": loss,
        "special_token_loss": 0,
        "special_token_label": None,
    }


def image_plan(kind: str, loss: int) -> dict[str, Any]:
    """A `vit_image` (understanding input) or `vae_image` (generation target) split."""
    return {"type": kind, "enable_cfg": 0, "loss": loss, "special_token_loss": 0, "special_token_label": None}


def image_tokens(tensor, stride: int) -> int:
    """Tokens BAGEL counts for an image tensor [3, H, W] (one per stride x stride patch)."""
    height, width = tensor.shape[1:]
    return width * height // stride**2


def _define_classes() -> dict[str, type]:
    from data.data_utils import pil_img2rgb
    from data.dataset_base import PackedDataset
    from data.vlm_dataset import SftJSONLIterableDataset
    from PIL import Image

    # The original class even after `install` swapped the module attribute, so repeated calls never stack subclasses.
    base_packed = getattr(PackedDataset, "_bagel_original", PackedDataset)

    def open_image(image_dir: str, name: str):
        return pil_img2rgb(Image.open(os.path.join(image_dir, name)))

    class PairedSftIterableDataset(SftJSONLIterableDataset):
        """One exported line per pair -> one item holding the understanding and the generation sample.

        Lines, their once-per-run shuffle and their split over ranks x workers are the `vlm_sft` reader's own, and
        so is the resume state (`data_status[worker] = row`). `transform` is the VAE transform (generation image),
        `vit_transform` the ViT one (understanding image), as `build_datasets` builds them from the YAML.
        """

        def __init__(self, dataset_name, transform, vit_transform, tokenizer, jsonl_path_list, data_dir_list,
                     num_used_data, local_rank=0, world_size=1, num_workers=8, data_status=None,
                     shuffle_lines=False, shuffle_seed=0):  # fmt: skip
            super().__init__(dataset_name, vit_transform, tokenizer, None, jsonl_path_list, data_dir_list,
                             num_used_data, local_rank, world_size, num_workers, data_status,
                             shuffle_lines, shuffle_seed)  # fmt: skip
            self.transform, self.vit_transform = transform, vit_transform

        def understanding_sample(self, und: dict[str, Any], image_dir: str) -> dict[str, Any]:
            """[vit_image, question (no loss), answer (loss)], exactly as `vlm_sft` plans an `<image>\\n` line."""
            image = self.vit_transform(open_image(image_dir, und["image"]), img_num=1)
            images, texts, plan, num_tokens = [image], [], [], image_tokens(image, self.vit_transform.stride)
            for element in self.change_format({"conversations": und["conversations"]}, num_images=1):
                if element["type"] == "image":
                    plan.append(image_plan("vit_image", loss=0))
                    continue
                ids = self.tokenizer.encode(element["text"])
                if ids:
                    texts.append(ids)
                    plan.append(text_plan(loss=element["has_loss"]))
                    num_tokens += len(ids)
            return {"image_tensor_list": images, "text_ids_list": texts, "sequence_plan": plan,
                    "num_tokens": num_tokens}  # fmt: skip

        def generation_sample(self, gen: dict[str, Any], image_dir: str) -> dict[str, Any]:
            """[caption (no loss, CFG-droppable), vae_image (loss)], exactly as `t2i_pretrain` plans a row."""
            image = self.transform(open_image(image_dir, gen["image"]))
            ids = self.tokenizer.encode(gen["caption"])
            return {
                "image_tensor_list": [image],
                "text_ids_list": [ids],
                "sequence_plan": [text_plan(loss=0, enable_cfg=1), image_plan("vae_image", loss=1)],
                "num_tokens": image_tokens(image, self.transform.stride) + len(ids),
            }

        def pair_item(self, line: str, image_dir: str) -> dict[str, Any]:
            record = json.loads(line)
            und = self.understanding_sample(record["und"], image_dir)
            gen = self.generation_sample(record["gen"], image_dir)
            # PackedDataset sizes the item by num_tokens + 2 per split: the sum over both halves is the packed size.
            return {PAIRED_KEY: [und, gen], "num_tokens": und["num_tokens"] + gen["num_tokens"],
                    "sequence_plan": und["sequence_plan"] + gen["sequence_plan"], "pair_id": record["id"]}  # fmt: skip

        def __iter__(self):
            lines, worker_id = self.get_data_paths_per_worker()
            start = self.data_status[worker_id] + 1 if self.data_status is not None else 0
            while True:  # like every BAGEL reader: repeat the worker's lines until the trainer stops
                for row, (line, image_dir) in enumerate(lines[start:], start=start):
                    # The export was validated and decoded: a failure here is a broken export, so it is not skipped.
                    item = self.pair_item(line, image_dir)
                    item["data_indexes"] = {"data_indexes": row, "worker_id": worker_id,
                                            "dataset_name": self.dataset_name}  # fmt: skip
                    yield item
                start = 0

    class PairPackedDataset(base_packed):
        """BAGEL's packer; a paired item goes into the current pack whole, one document per half. The parent's
        `__iter__` already treats the item atomically (it fits, or it waits in the buffer for the next pack)."""

        def pack_sequence(self, sample, sequence_status):
            if PAIRED_KEY not in sample:
                return super().pack_sequence(sample, sequence_status)
            for half in sample[PAIRED_KEY]:  # each call appends one `sample_lens` entry: a separate document
                sequence_status = super().pack_sequence(half, sequence_status)
            return sequence_status

    PairPackedDataset._bagel_original = base_packed
    classes = {"PairedSftIterableDataset": PairedSftIterableDataset, "PairPackedDataset": PairPackedDataset}
    for name, cls in classes.items():  # picklable by name (spawned DataLoader workers resolve them via __getattr__)
        cls.__module__, cls.__qualname__ = __name__, name
    return classes


def paired_classes() -> dict[str, type]:
    """The two classes, defined once on first use (needs BAGEL's root on `sys.path`)."""
    if not _CLASSES:
        _CLASSES.update(_define_classes())
    return _CLASSES


def __getattr__(name: str) -> type:
    if name in CLASS_NAMES:
        return paired_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_bagel_root(bagel_root: str | Path) -> Path:
    """The resolved checkout; a ValueError naming the missing file when it is not a BAGEL checkout."""
    root = Path(bagel_root).expanduser().resolve()
    for name in BAGEL_FILES:
        if not (root / name).is_file():
            raise ValueError(
                f"--bagel-root {root}: {name} not found; fix: point it at a ByteDance-Seed/Bagel checkout"
            )
    return root


def install(bagel_root: str | Path, info: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Register the paired group, merge `info` into BAGEL's DATASET_INFO, and make the trainer's
    `from data.dataset_base import PackedDataset` return `PairPackedDataset` (both dicts are the objects
    `dataset_base` imported, so no BAGEL file changes)."""
    root = str(check_bagel_root(bagel_root))
    if root not in sys.path:
        sys.path.insert(0, root)
    import data.dataset_base as dataset_base
    import data.dataset_info as dataset_info

    classes = paired_classes()
    dataset_info.DATASET_REGISTRY[PAIRED_GROUP] = classes["PairedSftIterableDataset"]
    for group, entries in info.items():
        if group not in dataset_info.DATASET_REGISTRY:
            raise ValueError(
                f"dataset_info group {group!r} is not one of BAGEL's groups {sorted(dataset_info.DATASET_REGISTRY)}; "
                "fix: use the dataset_info.json written by data_tools/export_bagel.py"
            )
        dataset_info.DATASET_INFO.setdefault(group, {}).update(entries)
    dataset_base.PackedDataset = classes["PairPackedDataset"]
