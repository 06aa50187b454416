"""Run BAGEL's own trainer on a PairUG export with pair-level batches (PairUni App. E, Table 4b).

    torchrun --nproc_per_node=8 scripts/bagel_launch.py --bagel-root B --dataset-info I \\
        [--recipe configs/recipes/bagel_pairug.yaml] <BAGEL train/pretrain_unified_navit.py flags>

Takes its own three flags out of the command line, registers the paired group and packer into BAGEL's registries
(`bagel_paired.install`), checks the dataset YAML against dataset_info and the world size x workers, then runs
BAGEL's trainer as `__main__` with the recipe's flags followed by the remaining ones (a later flag wins).
Standard library + BAGEL only: it runs in BAGEL's environment. See docs/bagel.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import runpy
import sys
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # `torchrun scripts/bagel_launch.py`: make `scripts.bagel_paired` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import bagel_paired

logger = logging.getLogger("bagel_launch")
TRAINER = "train/pretrain_unified_navit.py"
# BAGEL's `DataArguments.num_workers` default, in force when neither the recipe nor the command line sets it.
BAGEL_DEFAULT_WORKERS = 4
JSONL_GROUPS = ("vlm_sft", bagel_paired.PAIRED_GROUP)  # sharded by lines; the other groups by files


def split_argv(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(the launcher's own flags, everything else for BAGEL's trainer, in order)."""
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--bagel-root", type=Path, required=True, help="ByteDance-Seed/Bagel checkout")
    parser.add_argument("--dataset-info", type=Path, required=True, help="dataset_info.json from export_bagel.py")
    parser.add_argument("--recipe", type=Path, help="YAML of trainer flags put before the command line's")
    return parser.parse_known_args(argv)


def recipe_flags(path: Path) -> list[str]:
    """A flat YAML mapping `flag: value` as `--flag value` arguments (booleans as True/False, as BAGEL parses)."""
    recipe = yaml.safe_load(path.read_text()) or {}
    if not isinstance(recipe, dict):
        raise ValueError(f"{path}: expected a mapping of trainer flags; fix: write `flag: value` lines")
    flags: list[str] = []
    for key, value in recipe.items():
        if isinstance(value, dict | list) or value is None:
            raise ValueError(f"{path}: {key}: {value!r} is not a scalar; fix: give one value per flag")
        flags += [f"--{key}", str(value)]
    return flags


def flag_value(argv: list[str], name: str) -> str | None:
    """The last value given for a trainer flag. `--a_b`, `--a-b`, `--a_b=v` and abbreviations (TRAIN.md writes
    `--num_worker`) all count, as BAGEL's argparse-based parser accepts them."""
    wanted, value = name.replace("-", "_"), None
    for i, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        key, has_value, inline = arg[2:].partition("=")
        key = key.replace("-", "_")
        if key == wanted or (len(key) >= 4 and wanted.startswith(key)):
            value = inline if has_value else (argv[i + 1] if i + 1 < len(argv) else None)
    return value


def group_units(group: str, entries: list[dict[str, Any]], num_used: list[int]) -> int:
    """Units BAGEL shards for a group: JSONL lines kept (first `num_used` of each file) or parquet paths listed."""
    if group not in JSONL_GROUPS:
        return sum(num_used)
    total = 0
    for entry, used in zip(entries, num_used, strict=False):
        with open(entry["jsonl_path"], "rb") as f:
            total += min(used, sum(1 for _ in f))
    return total


def check_dataset_config(config: dict[str, Any], info: dict[str, dict[str, Any]], world: int, workers: int) -> None:
    """Fail before model loading on what BAGEL would hit later: a name without info entry (`KeyError: 'data_dir'`),
    `vlm_sft` without `frame_sampler_args` (TypeError), or a worker with no units (it loops forever)."""
    for group, args in config.items():
        names = args.get("dataset_names", [])
        missing = [n for n in names if n not in info.get(group, {})]
        if missing:
            raise ValueError(f"dataset YAML group {group!r}: {missing} have no dataset_info entry; "
                             f"fix: use the names in --dataset-info ({sorted(info.get(group, {}))})")  # fmt: skip
        if group == "vlm_sft" and "frame_sampler_args" not in args:
            raise ValueError("dataset YAML group 'vlm_sft': no frame_sampler_args; fix: copy them from bagel_mix.yaml")
        units = group_units(group, [info[group][n] for n in names], list(args.get("num_used_data", [])))
        if units // world // workers < 1:
            raise ValueError(
                f"dataset YAML group {group!r}: {units} unit(s) for {world} ranks x {workers} workers leaves workers "
                "empty (they loop forever); fix: re-export with --ranks/--workers matching, or lower --num_workers"
            )


def main(argv: list[str] | None = None) -> None:
    own, rest = split_argv(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = bagel_paired.check_bagel_root(own.bagel_root)
    info = json.loads(own.dataset_info.read_text())
    trainer_args = (recipe_flags(own.recipe) if own.recipe else []) + rest
    config_file = flag_value(trainer_args, "dataset_config_file")
    if config_file is None:
        raise ValueError("no --dataset_config_file; fix: pass the bagel_paired.yaml (or bagel_mix.yaml) export")
    workers = int(flag_value(trainer_args, "num_workers") or BAGEL_DEFAULT_WORKERS)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    check_dataset_config(yaml.safe_load(Path(config_file).read_text()), info, world, workers)
    bagel_paired.install(root, info)
    logger.info("running %s with %s", root / TRAINER, " ".join(trainer_args))
    sys.argv = [str(root / TRAINER), *trainer_args]
    runpy.run_path(str(root / TRAINER), run_name="__main__")


if __name__ == "__main__":
    main()
