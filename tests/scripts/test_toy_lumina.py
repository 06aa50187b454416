"""The toy Lumina-DiMOO builder: original layout read back by the backbone, the toy codebook, the VQ's codes, the
recipe's decode settings, the shared CLI's cache (the learning is `make demo BACKBONE=lumina_dimoo`'s job)."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from backbones import load_backbone
from lumina_dimoo.vq import encode_codes
from scripts.make_toy_lumina import main as make_toy_main
from scripts.toy_lumina import ToyLuminaSettings, build_toy_lumina, make_world, world_pixels

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "recipes" / "lumina_dimoo_toy_cpu.yaml"
# A few steps of everything: the plumbing, not the learning.
QUICK = dict(num_scenes=16, vq_steps=3, lm_steps=2, batch_size=4, eval_scenes=4, threads=1)


@pytest.fixture(scope="module")
def quick_toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy-lumina")
    return out, build_toy_lumina(out, ToyLuminaSettings(**QUICK))


def test_written_in_the_original_layout_and_read_back(quick_toy):
    out, summary = quick_toy
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llada" and config["pairuni_image_size"] == 32
    assert (out / "model.safetensors").is_file() and (out / "vqvae" / "config.json").is_file()
    backbone, model = load_backbone(out)
    assert backbone.name == "lumina_dimoo" and backbone.processor.image_grid == (4, 4)
    assert backbone.tokens.codebook_size == ToyLuminaSettings().codebook_size == model.vqvae.config.num_vq_embeddings
    for key in ("accuracy", "toy_geneval", "greedy_accuracy", "greedy_toy_geneval"):
        assert 0.0 <= summary[key] <= 1.0, key


def test_stored_codebook_is_unit_norm_so_lookup_matches_training(quick_toy):
    out, _ = quick_toy
    _, model = load_backbone(out)
    codebook = model.vqvae.quantize.embedding.weight  # [K, C]
    torch.testing.assert_close(codebook.norm(dim=1), torch.ones(len(codebook)))
    pixels = world_pixels(make_world(4, 0, 32), 8, 32)
    latent = torch.nn.functional.normalize(model.vqvae.encode(pixels).latents, dim=1)  # [N, C, h, w]
    cosine = torch.einsum("nchw,kc->nhwk", latent, codebook).argmax(-1)  # what train_vq picks
    assert torch.equal(encode_codes(model.vqvae, pixels), cosine)


def test_recipe_decodes_as_the_warm_start_trained():
    recipe, settings = yaml.safe_load(RECIPE.read_text()), ToyLuminaSettings()
    assert recipe["backbone"] == "lumina_dimoo" and recipe["reward_funcs"] == ["accuracy", "toy_geneval"]
    assert recipe["max_completion_length"] == settings.answer_tokens
    assert (recipe["text_steps"], recipe["image_steps"]) == (settings.text_steps, settings.image_steps)
    assert recipe["understanding_system_prompt"] == "" and recipe["understanding_prompt_template"] == "{question}"


def test_cli_reuses_a_build_with_the_same_settings(quick_toy, capsys):
    out, summary = quick_toy
    args = ["--out_dir", str(out), "--reuse", *[f"--{k}={v}" for k, v in QUICK.items()]]
    assert make_toy_main(args) == 0
    assert f"reusing {out} (settings {summary['key']})" in capsys.readouterr().out
