"""HPS v2.1 scorer on a tiny open_clip config: loading, preprocessing, batching, PIL vs tensor, ViT-H-14 keys."""

import subprocess
import sys
import textwrap

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from PIL import Image
from torchvision.transforms import InterpolationMode

from rewards.reward_generate import (
    HPS_FILENAME,
    HPS_HUB_REPO,
    HPSv21Scorer,
    hps_preprocess,
    load_hps_state_dict,
    pil_to_tensor,
)

PROMPTS = ["a red apple", "a photo of a dog", "two cars on a road", "blue sky", "a cat on a mat", "text: HELLO"]


def _images(n: int, height: int = 48, width: int = 40, seed: int = 0) -> torch.Tensor:
    """Smooth random images [n, 3, H, W] in [-1, 1], quantised to uint8 levels so PIL can hold them exactly."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, height // 4, width // 4, generator=generator)
    images = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return (images * 255).round() / 127.5 - 1.0


def _to_pil(images: torch.Tensor) -> list[Image.Image]:
    arrays = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(array) for array in arrays]


def test_missing_checkpoint_names_file_and_source(tmp_path, tiny_model_name):
    missing = tmp_path / "nowhere" / HPS_FILENAME
    with pytest.raises(FileNotFoundError) as error:
        HPSv21Scorer(missing, model_name=tiny_model_name)
    message = str(error.value)
    assert str(missing) in message and HPS_FILENAME in message and HPS_HUB_REPO in message


def test_checkpoint_formats_load_the_same_weights(tmp_path, tiny_hps_checkpoint, tiny_model_name):
    wrapped = load_hps_state_dict(tiny_hps_checkpoint)
    assert not any(key.startswith("module.") for key in wrapped)
    bare_path = tmp_path / "bare.pt"
    torch.save(wrapped, bare_path)
    scorer = HPSv21Scorer(bare_path, model_name=tiny_model_name)
    for key, value in scorer.model.state_dict().items():
        torch.testing.assert_close(value, wrapped[key].float(), msg=key)


def test_scores_come_from_the_checkpoint_not_the_init(tiny_hps_checkpoint, tiny_model_name):
    # Construction skips random init: every value must come from the checkpoint, whatever the RNG state.
    images = _images(2)
    scores = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        scores.append(HPSv21Scorer(tiny_hps_checkpoint, model_name=tiny_model_name).score(images, PROMPTS[:2]))
    torch.testing.assert_close(scores[0], scores[1], atol=0, rtol=0)


def test_checkpoint_for_another_architecture_is_rejected(tmp_path, tiny_hps_checkpoint, tiny_model_name):
    state_dict = load_hps_state_dict(tiny_hps_checkpoint)
    del state_dict["visual.proj"]
    state_dict["head.extra"] = torch.zeros(1)
    path = tmp_path / "other.pt"
    torch.save({"state_dict": state_dict}, path)
    with pytest.raises(ValueError, match=r"visual\.proj"):
        HPSv21Scorer(path, model_name=tiny_model_name)


def test_scorer_is_frozen_eval_and_sized_from_the_model(tiny_scorer):
    assert not tiny_scorer.model.training
    assert not any(p.requires_grad for p in tiny_scorer.model.parameters())
    assert tiny_scorer.image_size == 32


def test_batched_scores_equal_one_by_one(tiny_scorer):
    images = _images(len(PROMPTS))
    batched = tiny_scorer.score(images, PROMPTS)  # batch_size 4: one full and one partial batch
    single = torch.cat([tiny_scorer.score(images[i : i + 1], PROMPTS[i : i + 1]) for i in range(len(PROMPTS))])
    assert batched.shape == (len(PROMPTS),) and batched.dtype == torch.float32
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def test_tensor_path_equals_pil_path(tiny_scorer):
    images = _images(4, height=60, width=44)
    from_tensor = tiny_scorer.score(images, PROMPTS[:4])
    from_pil = tiny_scorer.score(_to_pil(images), PROMPTS[:4])
    torch.testing.assert_close(from_tensor, from_pil, atol=1e-5, rtol=0)
    # Unquantised decoder output differs from its PIL copy only by uint8 rounding.
    noisy = images + 0.003 * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(tiny_scorer.score(noisy, PROMPTS[:4]), from_pil, atol=1e-2, rtol=0)


def test_score_is_cosine_without_logit_scale(tiny_scorer):
    images = _images(3)
    scores = tiny_scorer.score(images, PROMPTS[:3])
    model = tiny_scorer.model
    with torch.no_grad():
        image_features = F.normalize(model.encode_image(hps_preprocess(images, 32)), dim=-1)
        text_features = F.normalize(model.encode_text(tiny_scorer.tokenizer(PROMPTS[:3])), dim=-1)
    torch.testing.assert_close(scores, (image_features * text_features).sum(-1), atol=1e-5, rtol=0)
    assert scores.abs().max() <= 1.0


def test_score_depends_on_prompt(tiny_scorer):
    image = _images(1).expand(len(PROMPTS), -1, -1, -1)
    scores = tiny_scorer.score(image, PROMPTS)
    assert scores.unique().numel() == len(PROMPTS)


def test_score_validates_lengths(tiny_scorer):
    with pytest.raises(ValueError, match="prompts"):
        tiny_scorer.score(_images(2), PROMPTS[:3])


def test_bf16_precision_scores_within_1e2_of_fp32(tiny_hps_checkpoint, tiny_model_name, tiny_scorer):
    bf16 = HPSv21Scorer(tiny_hps_checkpoint, model_name=tiny_model_name, precision="bf16")
    images = _images(4)
    scores, reference = bf16.score(images, PROMPTS[:4]), tiny_scorer.score(images, PROMPTS[:4])
    assert scores.dtype == torch.float32
    assert not torch.equal(scores, reference)  # the bf16 matmuls really ran
    torch.testing.assert_close(scores, reference, atol=1e-2, rtol=0)


def test_unknown_precision_is_rejected(tiny_hps_checkpoint, tiny_model_name):
    with pytest.raises(ValueError, match="precision: 'fp16' is unknown"):
        HPSv21Scorer(tiny_hps_checkpoint, model_name=tiny_model_name, precision="fp16")


def test_bfloat16_scorer_tracks_float32(tiny_hps_checkpoint, tiny_model_name, tiny_scorer):
    bf16 = HPSv21Scorer(tiny_hps_checkpoint, dtype=torch.bfloat16, model_name=tiny_model_name)
    images = _images(4)
    scores = bf16.score(images, PROMPTS[:4])
    assert scores.dtype == torch.float32 and scores.device == images.device
    torch.testing.assert_close(scores, tiny_scorer.score(images, PROMPTS[:4]), atol=5e-2, rtol=0)


def _hand_letterbox(image: Image.Image, size: int = 224) -> torch.Tensor:
    """HPSv2's validation transform written out: ToTensor, ResizeMaxSize(size) (longer side to size, zero pad), norm."""
    pixels = TF.to_tensor(image)  # [3, H, W] in [0, 1]
    height, width = pixels.shape[-2:]
    scale = size / max(height, width)
    new_h, new_w = round(height * scale), round(width * scale)
    pixels = TF.resize(pixels, [new_h, new_w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    pad_h, pad_w = size - new_h, size - new_w
    pixels = TF.pad(pixels, [pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2], fill=0)
    return TF.normalize(pixels, OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)


@pytest.mark.parametrize(("height", "width"), [(384, 384), (300, 420), (100, 80), (224, 150)])
def test_preprocess_is_hpsv2_letterbox(height, width):
    image = _to_pil(_images(1, height=height, width=width))[0]
    reference = _hand_letterbox(image)
    ours = hps_preprocess(pil_to_tensor(image).unsqueeze(0), 224)[0]
    assert ours.shape == reference.shape == (3, 224, 224)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)


def test_letterbox_keeps_the_whole_non_square_image_and_pads_black():
    # A 100 x 200 image: resized to 112 x 224, centred with 56 black rows above and below.
    image = torch.full((1, 3, 100, 200), 0.5)  # in [-1, 1]: a light grey
    out = hps_preprocess(image, 224)[0]  # [3, 224, 224]
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(3, 1, 1)
    black, grey = -mean / std, (0.75 - mean) / std
    torch.testing.assert_close(out[:, :56], black.expand(3, 56, 224))
    torch.testing.assert_close(out[:, -56:], black.expand(3, 56, 224))
    torch.testing.assert_close(out[:, 56:-56], grey.expand(3, 112, 224), atol=1e-5, rtol=0)


def _hps_vit_h_14_keys() -> set[str]:
    """The parameter names of an HPS v2 / v2.1 checkpoint (open_clip ViT-H-14: 32 vision, 24 text blocks)."""
    block = [
        "ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
        "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
        "mlp.c_proj.weight", "mlp.c_proj.bias",
    ]  # fmt: skip
    top = [
        "positional_embedding", "text_projection", "logit_scale", "token_embedding.weight", "ln_final.weight",
        "ln_final.bias", "visual.class_embedding", "visual.positional_embedding", "visual.proj",
        "visual.conv1.weight", "visual.ln_pre.weight", "visual.ln_pre.bias", "visual.ln_post.weight",
        "visual.ln_post.bias",
    ]  # fmt: skip
    visual = {f"visual.transformer.resblocks.{i}.{name}" for i in range(32) for name in block}
    text = {f"transformer.resblocks.{i}.{name}" for i in range(24) for name in block}
    return set(top) | visual | text


def test_vit_h_14_has_exactly_the_hps_checkpoint_keys():
    with torch.device("meta"):  # no weights allocated: builds in well under a second
        model = open_clip.create_model("ViT-H-14", pretrained=None, device="meta")
    state_dict = model.state_dict()
    assert set(state_dict) == _hps_vit_h_14_keys()
    assert len(state_dict) == 686
    assert state_dict["visual.transformer.resblocks.31.attn.in_proj_weight"].shape == (3 * 1280, 1280)
    assert state_dict["visual.positional_embedding"].shape == (257, 1280)  # (224 / 14)^2 + 1
    assert state_dict["text_projection"].shape == (1024, 1024)
    assert state_dict["logit_scale"].shape == ()
    assert model.visual.image_size == (224, 224)


def test_tokenizer_works_offline():
    tokens = open_clip.get_tokenizer("ViT-H-14")(["a photo of a cat"])
    assert tokens.shape == (1, 77) and tokens[0, 0] == 49406  # start-of-text from the bundled BPE vocab


ZERO_INIT_PROBE = textwrap.dedent(
    """
    import json, os, sys
    import deepspeed, open_clip, torch
    from rewards.reward_generate import HPSv21Scorer

    config_path, checkpoint, model_name = sys.argv[1:4]
    open_clip.add_model_config(config_path)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[4], RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
    torch.distributed.init_process_group("gloo", rank=0, world_size=1)
    ds_config = {"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3}}
    with deepspeed.zero.Init(config_dict_or_path=ds_config):
        scorer = HPSv21Scorer(checkpoint, model_name=model_name)
        after = torch.nn.Linear(4, 4)  # the zero.Init context must still partition what comes next
    weight = scorer.model.visual.conv1.weight
    print(json.dumps({"scorer_shape": list(weight.shape), "scorer_partitioned": hasattr(weight, "ds_id"),
                      "after_partitioned": hasattr(after.weight, "ds_id"),
                      "score": scorer.score(torch.zeros(1, 3, 32, 32), ["a"]).tolist()}))
    """
)


@pytest.mark.slow
def test_scorer_built_inside_zero_init_is_whole(tmp_path, tiny_hps_checkpoint, tiny_model_name):
    import json
    import socket

    config_path = next(p for p in open_clip.factory._MODEL_CONFIG_PATHS if p.name == f"{tiny_model_name}.json")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = tmp_path / "probe.py"
    script.write_text(ZERO_INIT_PROBE)
    command = [sys.executable, str(script), str(config_path), str(tiny_hps_checkpoint), tiny_model_name, str(port)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["scorer_shape"] == [32, 3, 8, 8] and not report["scorer_partitioned"]
    assert report["after_partitioned"]
    assert np.isfinite(report["score"]).all()


def test_each_distinct_prompt_is_encoded_once(tiny_scorer, monkeypatch):
    """A GRPO group shares its prompt: the text tower runs once per distinct prompt, and rows keep their own prompt."""
    prompts = ["a red cube"] * 3 + ["a blue ball"] * 3
    images = _images(6)
    expected = torch.stack([tiny_scorer.score(images[i : i + 1], [p])[0] for i, p in enumerate(prompts)])
    encoded = []
    encode_text = tiny_scorer.model.encode_text
    monkeypatch.setattr(tiny_scorer.model, "encode_text", lambda t: encoded.append(len(t)) or encode_text(t))
    scores = tiny_scorer.score(images, prompts)
    assert sum(encoded) == 2
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-5)
