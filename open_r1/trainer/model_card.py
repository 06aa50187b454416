"""The README.md model card written next to every saved model and checkpoint-N.

It replaces TRL's generic card ("fine-tuned version of [None]" with a text-generation pipeline example) by what a
reader of a PairUni checkpoint needs: base model, method and paper, training data, recipe, key hyperparameters,
the latest reward metrics, and usage examples that run as written (with `janus` and with plain transformers).
Pure rendering (`render_model_card`) is separate from gathering the facts from a trainer (`model_card_info`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

METHODS = {
    "PairGRPO": (
        "PairUni: Pairwise Training for Unified Multimodal Language Models",
        "https://arxiv.org/abs/2510.25682",
    ),
    "UniRL": (
        "UniRL: Self-Improving Unified Multimodal Models via Supervised and Reinforcement Learning",
        "https://arxiv.org/abs/2505.23380",
    ),
}
# Training arguments worth a line in the card, in this order (missing ones are skipped).
KEY_HYPERPARAMETERS = (
    "learning_rate",
    "max_steps",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_generations",
    "temperature",
    "cfg_weight",
    "image_temperature",
    "beta",
    "epsilon",
    "loss_type",
    "image_logprob",
    "pair_weighting",
    "reward_funcs",
    "reward_weights",
    "bf16",
    "seed",
)


@dataclass
class ModelCardInfo:
    """The facts a card states; `None` renders as "not recorded"."""

    model_name: str
    base_model: str | None
    method: str = "PairGRPO"
    backbone: str = "janus"  # backbones.BACKBONES name: the usage examples follow it
    data_file: str | None = None
    recipe: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    global_step: int = 0
    model_path: str = "path/to/this/folder"


def launch_arguments(argv: list[str] | None = None) -> dict[str, str]:
    """`--recipe` (the `--config` YAML) and `--data_file` (`--pair_data_path`, from the command line or the recipe)
    of the running training command; empty when it has neither (e.g. in tests or notebooks)."""
    argv = sys.argv[1:] if argv is None else argv
    found = {}
    for name, key in (("--config", "recipe"), ("--pair_data_path", "data_file")):
        for i, arg in enumerate(argv):
            if arg == name and i + 1 < len(argv):
                found[key] = argv[i + 1]
            elif arg.startswith(name + "="):
                found[key] = arg.split("=", 1)[1]
    recipe = Path(found.get("recipe", ""))
    if "data_file" not in found and recipe.is_file():
        data = (yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}).get("pair_data_path")
        if data:
            found["data_file"] = str(data)
    return found


def latest_reward_metrics(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The last logged value of every reward metric (keys containing "reward"), finite values only."""
    metrics: dict[str, float] = {}
    for entry in log_history:
        for key, value in entry.items():
            if "reward" in key and isinstance(value, int | float) and math.isfinite(value):
                metrics[key] = float(value)
    return metrics


def model_card_info(trainer: Any, model_name: str, folder: Path, data_file: str | None = None) -> ModelCardInfo:
    """Gather the card's facts from a (PairGRPO or UniRL) trainer and the launch command; `folder` is where the
    card (and the model) live, used in the usage examples."""
    args = trainer.args
    launch = launch_arguments()
    method = getattr(args, "method", None) or ("UniRL" if "unirl" in type(trainer).__name__.lower() else "PairGRPO")
    method = {m.lower(): m for m in METHODS}.get(str(method).lower(), str(method))
    hyperparameters = {k: getattr(args, k) for k in KEY_HYPERPARAMETERS if getattr(args, k, None) is not None}
    return ModelCardInfo(
        model_name=model_name,
        base_model=getattr(trainer.model.config, "_name_or_path", None) or None,
        method=method,
        backbone=getattr(getattr(trainer, "backbone", None), "name", "janus"),
        data_file=data_file or launch.get("data_file"),
        recipe=launch.get("recipe"),
        hyperparameters=hyperparameters,
        metrics=latest_reward_metrics(trainer.state.log_history),
        global_step=trainer.state.global_step,
        model_path=str(folder.resolve()),
    )


# Display names of the backbones in the card's first line.
FAMILIES = {"janus": "Janus-Pro", "lumina_dimoo": "Lumina-DiMOO", "showo": "Show-o"}


def _generic_usage(path: str, backbone: str) -> str:
    """Usage through the backbone interface: the same calls for every family (`backbones.Backbone`)."""
    quoted = repr(path)
    return f"""## Usage

With this repository (`backbones` + its `{backbone}` package, the same code that trained it):

```python
import torch
from PIL import Image

from backbones import AnswerSampling, ImageSampling, load_backbone
from backbones.interface import to_pil

backbone, model = load_backbone({quoted}, backbone={backbone!r})
with torch.no_grad():
    answers = backbone.sample_answers(model, ["What is in the image?"], [Image.open("image.jpg")],
                                      AnswerSampling(max_new_tokens=64, do_sample=False))
    print(backbone.decode_answers(answers.completion_ids)[0])
    images = backbone.sample_images(model, ["a red apple on a wooden table"], ImageSampling(),
                                    torch.Generator().manual_seed(0))
to_pil(images.pixels)[0].save("apple.png")
```
"""


def _usage(path: str, backbone: str = "janus") -> str:
    if backbone != "janus":
        return _generic_usage(path, backbone)
    quoted = repr(path)
    return f"""## Usage

With this repository's `janus` package (the same code that trained it):

```python
import torch
from PIL import Image

import janus

model, processor = janus.load_pretrained({quoted}, dtype="auto")
batch = processor.encode_understanding(["What is in the image?"], [Image.open("image.jpg")])
answers = janus.sample_answer_tokens(model, batch, max_new_tokens=64, do_sample=False)
print(processor.decode_answers(answers.completion_ids)[0])

prompts = processor.encode_generation(["a red apple on a wooden table"])
tokens = janus.sample_image_tokens(model, prompts, cfg_weight=5.0, generator=torch.Generator().manual_seed(0))
janus.to_pil(janus.decode_image_tokens(model, tokens.tokens))[0].save("apple.png")
```

With plain transformers (`JanusForConditionalGeneration`, no code from this repository):

```python
import torch
from PIL import Image
from transformers import AutoProcessor, JanusForConditionalGeneration

processor = AutoProcessor.from_pretrained({quoted})
model = JanusForConditionalGeneration.from_pretrained({quoted})
messages = [{{"role": "user", "content": [{{"type": "image"}}, {{"type": "text", "text": "What is in the image?"}}]}}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
inputs = processor(text=prompt, images=[Image.open("image.jpg")], return_tensors="pt")
output = model.generate(**inputs, max_new_tokens=64, do_sample=False)
print(processor.decode(output[0, inputs.input_ids.shape[1] :], skip_special_tokens=True))

prompt = processor.apply_chat_template([{{"role": "user", "content": "a red apple"}}], add_generation_prompt=True)
inputs = processor(text=prompt, generation_mode="image", return_tensors="pt")
tokens = model.generate(**inputs, generation_mode="image", do_sample=True)  # CFG 5 from generation_config.json
pixels = model.decode_image_tokens(tokens)  # [B, H, W, 3] in [-1, 1]
Image.fromarray(((pixels[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().numpy()).save("apple.png")
```
"""


def render_model_card(info: ModelCardInfo) -> str:
    """The README.md text (Hub metadata header + sections) for `info`."""
    title, link = METHODS.get(info.method, (info.method, None))
    base = info.base_model or "not recorded"
    header = {
        "library_name": "transformers",
        "pipeline_tag": "any-to-any",
        "tags": [info.backbone, "pairuni", info.method],
    }
    if info.base_model and not Path(info.base_model).is_absolute():
        header["base_model"] = info.base_model
    lines = ["---", yaml.safe_dump(header, sort_keys=False).strip(), "---", "", f"# {info.model_name}", ""]
    lines.append(
        f"{FAMILIES.get(info.backbone, info.backbone)} fine-tuned with **{info.method}** ([{title}]({link}))"
        if link
        else f"Fine-tuned with {info.method}"
    )
    lines[-1] += f" from `{base}`, {info.global_step} optimizer steps."
    lines += ["", "## Training", ""]
    lines.append(f"- Base model: `{base}`")
    lines.append(f"- Method: {info.method}" + (f" ({link})" if link else ""))
    lines.append(f"- Training data: `{info.data_file or 'not recorded'}`")
    lines.append(f"- Recipe: `{info.recipe or 'not recorded'}`")
    if info.hyperparameters:
        lines += ["", "| hyperparameter | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in info.hyperparameters.items()]
    lines += ["", f"## Reward metrics (last logged, step {info.global_step})", ""]
    if info.metrics:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v:.4g} |" for k, v in info.metrics.items()]
    else:
        lines.append("No reward metrics were logged yet.")
    lines += ["", _usage(info.model_path, info.backbone)]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text.replace("|", "\\|")


def write_model_card(trainer: Any, folder: str | Path, model_name: str, data_file: str | None = None) -> Path:
    """Render the card for `trainer` and write `folder/README.md`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    card = render_model_card(model_card_info(trainer, model_name, folder, data_file))
    (folder / "README.md").write_text(card, encoding="utf-8")
    return folder / "README.md"


def write_model_card_for_save(trainer: Any, model_name: str, data_file: str | None = None) -> list[Path]:
    """The trainer's card hook: README.md in output_dir, and in checkpoint-N too when TRL calls the hook right before
    saving that checkpoint (GRPOTrainer._save_checkpoint), so every checkpoint carries its own card."""
    output_dir = Path(trainer.args.output_dir)
    folders = [output_dir]
    # Only the checkpoint save may create checkpoint-N: a stray folder would be taken for a checkpoint on resume.
    if sys._getframe(2).f_code.co_name == "_save_checkpoint":
        folders.append(output_dir / f"checkpoint-{trainer.state.global_step}")
    return [write_model_card(trainer, folder, model_name, data_file) for folder in folders]
