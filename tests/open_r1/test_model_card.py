"""Model cards written with every checkpoint: facts from the trainer and the launch command, working usage."""

import json
import math
import re

import pytest
import torch

from open_r1.trainer.model_card import ModelCardInfo, latest_reward_metrics, launch_arguments, render_model_card
from tests.janus.transformers_folder import assert_transformers_folder_works


@pytest.mark.parametrize(("method", "link"), [("PairGRPO", "2510.25682"), ("UniRL", "2505.23380")])
def test_card_names_method_base_data_recipe_and_metrics(method, link):
    info = ModelCardInfo(
        model_name="pairuni-1b",
        base_model="deepseek-ai/Janus-Pro-1B",
        method=method,
        data_file="data/pairug.jsonl",
        recipe="configs/recipes/pairuni_1b.yaml",
        hyperparameters={"learning_rate": 1e-6, "reward_funcs": ["accuracy", "hps"]},
        metrics={"reward": 0.75, "rewards/accuracy/mean": 0.5},
        global_step=800,
    )
    card = render_model_card(info)
    assert f"https://arxiv.org/abs/{link}" in card and f"**{method}**" in card
    assert "base_model: deepseek-ai/Janus-Pro-1B" in card and "`data/pairug.jsonl`" in card
    assert "`configs/recipes/pairuni_1b.yaml`" in card and "| learning_rate | 1e-06 |" in card
    assert "| reward_funcs | accuracy, hps |" in card and "| rewards/accuracy/mean | 0.5 |" in card
    assert "[None]" not in card and "pipeline(" not in card
    assert "janus.load_pretrained" in card and 'generation_mode="image"' in card


def test_card_of_another_backbone_uses_the_backbone_interface():
    card = render_model_card(ModelCardInfo("run", "/m/Lumina-DiMOO", backbone="lumina_dimoo", model_path="/out/run"))
    assert card.splitlines()[card.splitlines().index("# run") + 2].startswith("Lumina-DiMOO fine-tuned with")
    assert "janus.load_pretrained" not in card and "- lumina_dimoo" in card  # tags
    code = card.split("```python\n")[1].split("```")[0]
    compile(code, "usage", "exec")  # the snippet is valid Python
    assert "load_backbone('/out/run', backbone='lumina_dimoo')" in code


def test_launch_arguments_read_the_command_and_its_recipe(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("pair_data_path: data/from_recipe.jsonl\nlearning_rate: 1.0e-6\n")
    assert launch_arguments(["--config", str(recipe)]) == {
        "recipe": str(recipe),
        "data_file": "data/from_recipe.jsonl",
    }
    assert launch_arguments([f"--config={recipe}", "--pair_data_path", "cli.jsonl"])["data_file"] == "cli.jsonl"
    assert launch_arguments(["-x"]) == {}


def test_latest_reward_metrics_keep_the_last_finite_value():
    history = [{"reward": 0.1, "loss": 1.0}, {"reward": 0.4, "rewards/hps/mean": math.nan}, {"train_loss": 0.3}]
    assert latest_reward_metrics(history) == {"reward": 0.4}


def run_usage_examples(card: str, workdir) -> None:
    """Execute every python block of the card's usage section, as a user would copy it (in `workdir`)."""
    from PIL import Image

    blocks = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    assert len(blocks) == 2
    Image.new("RGB", (40, 30), "blue").save(workdir / "image.jpg")
    for block in blocks:
        (workdir / "apple.png").unlink(missing_ok=True)
        exec(compile(block, "model-card-usage", "exec"), {})
        assert Image.open(workdir / "apple.png").size[0] > 0


@pytest.mark.slow
def test_checkpoint_carries_card_and_is_a_transformers_folder(make_trainer, pair_jsonl, tmp_path, monkeypatch):
    """A real training checkpoint: README.md with this run's facts; AutoProcessor/generate work; janus loads it."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"pair_data_path: {pair_jsonl}\n")
    monkeypatch.setattr("sys.argv", ["open_r1/grpo.py", "--config", str(recipe)])
    trainer, model = make_trainer(tmp_path / "run", save_strategy="steps", save_steps=1)
    trainer.train()
    checkpoint = tmp_path / "run" / "checkpoint-1"
    card = (checkpoint / "README.md").read_text()
    assert "**PairGRPO**" in card and "2510.25682" in card and f"`{pair_jsonl}`" in card and f"`{recipe}`" in card
    assert f"Base model: `{model.config._name_or_path}`" in card and "| learning_rate | 0.01 |" in card
    logged = latest_reward_metrics(trainer.state.log_history)
    assert logged and all(f"| {k} |" in card for k in logged)
    assert repr(str(checkpoint.resolve())) in card  # the usage examples point at this folder
    assert (tmp_path / "run" / "README.md").is_file()
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "janus"
    model.eval()
    processor = trainer.backbone.processor
    with torch.no_grad():
        assert_transformers_folder_works(checkpoint, model, processor)
    monkeypatch.chdir(tmp_path)
    run_usage_examples(card, tmp_path)
