"""The BAGEL launcher without BAGEL: its own flags come out, the recipe's go first, and dataset configs that would
crash or hang BAGEL's trainer are refused before any model loads."""

import json
from pathlib import Path

import pytest
import yaml

from data_tools.export_bagel import main as export_main
from scripts import bagel_launch, bagel_paired
from tests.data_tools.pairug_fixture import make_pairug

REPO = Path(__file__).resolve().parents[2]

RECIPE = REPO / "configs" / "recipes" / "bagel_pairug.yaml"


@pytest.fixture(scope="module")
def bagel_export(tmp_path_factory):
    """The default export (16 shards, 48 lines: 8 ranks x 2 workers) of a synthetic PairUG."""
    folder = tmp_path_factory.mktemp("launch")
    export_main(["--pairs", str(make_pairug(folder)[0]), "--out", str(folder / "export")])
    return folder / "export"


def test_own_flags_are_stripped_and_bagel_flags_kept_in_order():
    argv = ["--lr", "1e-5", "--bagel-root", "/b", "--resume-from", "/m", "--dataset-info", "/i.json", "--x=1"]
    own, rest = bagel_launch.split_argv(argv)
    assert (own.bagel_root, own.dataset_info, own.recipe) == (Path("/b"), Path("/i.json"), None)
    assert rest == ["--lr", "1e-5", "--resume-from", "/m", "--x=1"]


def test_recipe_holds_the_papers_settings():
    flags = bagel_launch.recipe_flags(RECIPE)
    values = dict(zip(flags[::2], flags[1::2]))
    assert all(key.startswith("--") for key in flags[::2])
    assert float(values["--lr"]) == 2e-5 and values["--max_latent_size"] == "64"
    assert values["--finetune_from_ema"] == "True" and values["--lr_scheduler"] == "constant"
    # The warm-up ends well inside the run (BAGEL's default 2000 would not end in a PairUG-length run).
    assert 0 < int(values["--warmup_steps"]) <= int(values["--total_steps"]) // 10
    assert int(values["--num_workers"]) == 2  # what the exporter's default shards feed at 8 ranks


def test_later_flags_win_and_every_spelling_is_read():
    argv = ["--num_workers", "2", "--dataset-config-file", "a.yaml", "--num-workers=3", "--num_worker", "1"]
    assert bagel_launch.flag_value(argv, "num_workers") == "1"
    assert bagel_launch.flag_value(argv, "dataset_config_file") == "a.yaml"
    assert bagel_launch.flag_value(argv, "lr") is None


def test_recipe_rejects_nested_values(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("lr: [1, 2]\n")
    with pytest.raises(ValueError, match="lr: .* not a scalar"):
        bagel_launch.recipe_flags(path)


def _config(export, name):
    return yaml.safe_load((export / name).read_text()), json.loads((export / "dataset_info.json").read_text())


@pytest.mark.parametrize("name", ["bagel_paired.yaml", "bagel_mix.yaml"])
def test_the_export_passes_the_checks_at_its_layout(bagel_export, name):
    config, info = _config(bagel_export, name)
    bagel_launch.check_dataset_config(config, info, world=8, workers=2)


def test_workers_left_empty_are_refused(bagel_export):
    config, info = _config(bagel_export, "bagel_mix.yaml")
    with pytest.raises(ValueError, match="'t2i_pretrain': 16 unit.*8 ranks x 4 workers.*loop forever"):
        bagel_launch.check_dataset_config(config, info, world=8, workers=4)  # BAGEL's default num_workers


def test_jsonl_units_are_the_lines_kept(bagel_export):
    config, info = _config(bagel_export, "bagel_paired.yaml")
    config["pairug_paired"]["num_used_data"] = [10_000]  # more than the file has: BAGEL keeps the 48 lines
    with pytest.raises(ValueError, match="48 unit"):
        bagel_launch.check_dataset_config(config, info, world=32, workers=2)


def test_names_without_info_and_missing_frame_sampler_are_refused(bagel_export):
    config, info = _config(bagel_export, "bagel_mix.yaml")
    config["vlm_sft"]["dataset_names"] = ["llava_ov"]
    with pytest.raises(ValueError, match=r"\['llava_ov'\] have no dataset_info entry.*pairug_und"):
        bagel_launch.check_dataset_config(config, info, world=8, workers=2)
    config, info = _config(bagel_export, "bagel_mix.yaml")
    del config["vlm_sft"]["frame_sampler_args"]
    with pytest.raises(ValueError, match="frame_sampler_args"):
        bagel_launch.check_dataset_config(config, info, world=8, workers=2)


def test_a_folder_that_is_not_bagel_is_refused(tmp_path):
    with pytest.raises(ValueError, match="train/pretrain_unified_navit.py not found"):
        bagel_paired.check_bagel_root(tmp_path)
    info = tmp_path / "info.json"
    info.write_text("{}")
    with pytest.raises(ValueError, match="not found; fix: point it at a ByteDance-Seed/Bagel checkout"):
        bagel_launch.main(["--bagel-root", str(tmp_path), "--dataset-info", str(info)])


def test_the_paired_module_imports_without_bagel():
    assert bagel_paired.PAIRED_GROUP == "pairug_paired" and not bagel_paired._CLASSES
    with pytest.raises(AttributeError):
        bagel_paired.NotAClass  # noqa: B018
