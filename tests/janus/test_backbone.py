"""Janus-Pro behind the backbone interface: the Protocol holds, the registry finds it, and its methods are the janus
functions (rollouts rescored exactly, own-image rows see the generated pixels, greedy answers batch like alone)."""

import json

import pytest
import torch
from PIL import Image

import janus
from backbones import AnswerSampling, Backbone, ImageSampling, infer_backbone, load_backbone
from janus.backbone import JanusBackbone


@pytest.fixture(scope="module")
def backbone(tiny_janus):
    return JanusBackbone(tiny_janus[1])


def test_janus_satisfies_the_protocol_and_the_registry_finds_it(backbone, tiny_janus_path, tmp_path):
    assert isinstance(backbone, Backbone)
    assert infer_backbone(tiny_janus_path) == "janus"  # original DeepSeek layout: model_type multi_modality
    found, model = load_backbone(tiny_janus_path, dtype=torch.float32)
    assert isinstance(found, JanusBackbone) and type(model).__name__ == "JanusForConditionalGeneration"
    found.save(model, tmp_path / "hf")
    assert infer_backbone(tmp_path / "hf") == "janus"  # transformers layout: model_type janus
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="--backbone"):
        infer_backbone(tmp_path / "bad")
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        infer_backbone(tmp_path)


@pytest.mark.parametrize("logprob", ["cfg", "conditional"])
def test_image_rollout_is_rescored_exactly_when_the_sampler_distribution_is_scored(tiny_janus, backbone, logprob):
    model, _ = tiny_janus
    options = ImageSampling(cfg_weight=3.0, temperature=0.6, logprob=logprob)
    with torch.no_grad():
        images = backbone.sample_images(model, ["a red cat", "two dogs"], options, torch.Generator().manual_seed(0))
        rescored = backbone.image_logps(model, images.rollout, options)
    assert images.pixels.shape[0] == 2 and images.pixels.abs().max() <= 1
    if logprob == "cfg":
        torch.testing.assert_close(rescored, images.rollout.sampling_logps, atol=1e-5, rtol=1e-5)
    else:  # the sampler drew from the CFG mix; a conditional-only score is not comparable, so none is returned
        assert images.rollout.sampling_logps is None


def test_own_image_rows_answer_about_the_generated_pixels(tiny_janus, backbone):
    model, processor = tiny_janus
    with torch.no_grad():
        images = backbone.sample_images(model, ["a red cat"] * 3, ImageSampling(), torch.Generator().manual_seed(1))
    photo = Image.new("RGB", (32, 32), "blue")
    seen = []
    hook = model.model.vision_model.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    greedy = AnswerSampling(max_new_tokens=4, do_sample=False)
    questions = ["What is it?", "Which colour?", "How many?"]
    own = torch.tensor([True, False, True])
    try:
        with torch.no_grad():
            answers = backbone.sample_answers(model, questions, [None, photo, None], greedy, images, own)
    finally:
        hook.remove()
    expected = processor.preprocess_images(images.pixels)
    torch.testing.assert_close(seen[0][own], expected[own])
    torch.testing.assert_close(seen[0][1], processor.preprocess_images([photo])[0])  # a file row keeps its image
    assert answers.completion_ids.shape[0] == 3
    # Left padding is handled: each row answers as it would alone.
    alone = []
    for i in range(3):
        with torch.no_grad():
            row = backbone.sample_answers(
                model, questions[i : i + 1], [None], greedy, type(images)(images.rollout.rows(slice(i, i + 1)),
                images.pixels[i : i + 1]), torch.tensor([True]),
            )  # fmt: skip
        alone += backbone.decode_answers(row.completion_ids)
    assert backbone.decode_answers(answers.completion_ids)[0::2] == alone[0::2]


def test_answer_rollout_scores_the_gold_answer(tiny_janus, backbone):
    model, processor = tiny_janus
    image = Image.new("RGB", (32, 32), "red")
    options = AnswerSampling()
    gold = backbone.answer_rollout(["What colour?"], [image], ["red"], options)
    assert gold.completion_ids[0, gold.completion_mask[0].bool()].tolist()[-1] == processor.special.eos_id
    batch = processor.encode_understanding(["What colour?"], [image])
    with torch.no_grad():
        direct = janus.answer_token_logps(model, batch, gold.completion_ids, gold.completion_mask)
        via = backbone.answer_logps(model, gold, options)
    torch.testing.assert_close(via, direct)


def test_sampling_without_decoding_gives_the_same_tokens_and_no_pixels(tiny_janus, backbone):
    model, _ = tiny_janus
    with torch.no_grad():
        decoded = backbone.sample_images(model, ["a cat"] * 2, ImageSampling(), torch.Generator().manual_seed(3))
        bare = backbone.sample_images(model, ["a cat"] * 2, ImageSampling(), torch.Generator().manual_seed(3), False)
    assert bare.pixels is None
    assert torch.equal(bare.rollout.completion_ids, decoded.rollout.completion_ids)
    torch.testing.assert_close(backbone.decode_images(model, bare.rollout.completion_ids), decoded.pixels)
