"""Fixtures for the reward tests: a tiny open_clip architecture and an HPS-format checkpoint written by the test."""

import json

import open_clip
import pytest
import torch

TINY_MODEL = "hps-test-tiny"
# Same structure as ViT-H-14 (CLIP ViT + text transformer), a few layers wide, 32 px input.
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def tiny_model_name(tmp_path_factory) -> str:
    """Name of a tiny open_clip config registered for this session."""
    config_path = tmp_path_factory.mktemp("open_clip_cfg") / f"{TINY_MODEL}.json"
    config_path.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config_path)
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_hps_checkpoint(tmp_path_factory, tiny_model_name):
    """A random tiny CLIP saved like HPS_v2.1_compressed.pt: fp16 weights under "state_dict", "module."-prefixed."""
    torch.manual_seed(0)
    model = open_clip.create_model(tiny_model_name, pretrained=None)
    state_dict = {f"module.{k}": v.half() for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("hps") / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": state_dict, "epoch": 1}, path)
    return path


@pytest.fixture(scope="session")
def tiny_scorer(tiny_hps_checkpoint, tiny_model_name):
    from rewards.reward_generate import HPSv21Scorer

    return HPSv21Scorer(tiny_hps_checkpoint, model_name=tiny_model_name, batch_size=4)
