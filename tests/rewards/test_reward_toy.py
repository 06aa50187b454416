"""toy_geneval: the toy world's GenEval-like image reward reads colour, count and shape from the pixels."""

import random

import pytest
import torch
import torchvision.transforms.functional as TF

from data_tools.demo_scenes import Scene, draw_scene, generation_prompt, random_scene
from rewards import build_reward_funcs
from rewards.reward_toy import ToyTarget, classify_shape, palette_labels, parse_toy_prompt, toy_geneval


def pixels(scene: Scene, size: int = 32) -> torch.Tensor:
    return TF.pil_to_tensor(draw_scene(scene, size)).float().unsqueeze(0) / 127.5 - 1.0  # [1, 3, S, S]


@pytest.mark.parametrize(
    ("prompt", "target"),
    [
        ("a photo of a red circle", ToyTarget(1, "red", "circle")),
        ("a photo of three Blue diamonds", ToyTarget(3, "blue", "diamond")),
        ("two green squares in a row", ToyTarget(2, "green", "square")),
        ("a photo of a purple circle", None),
        ("a cat on a sofa", None),
    ],
)
def test_parse_toy_prompt(prompt, target):
    assert parse_toy_prompt(prompt) == target


@pytest.mark.parametrize("size", [32, 64])
def test_drawn_scenes_score_one_against_their_own_prompt(size):
    rng = random.Random(0)
    for _ in range(60):
        scene = random_scene(rng)
        assert toy_geneval([generation_prompt(scene)], [""], images=pixels(scene, size)) == [pytest.approx(1.0)]


@pytest.mark.parametrize(
    ("asked", "score"),
    [
        (Scene("circle", "red", 2, "row"), 1.0),
        (Scene("circle", "blue", 2, "row"), 0.0),  # wrong colour: no target pixels, no blobs
        (Scene("square", "red", 2, "row"), 2 / 3),  # right colour and count, wrong shape
        (Scene("circle", "red", 3, "row"), (1 + 1 / 2 + 1) / 3),  # count off by one
    ],
)
def test_each_check_counts(asked, score):
    drawn = pixels(Scene("circle", "red", 2, "row"))
    assert toy_geneval([generation_prompt(asked)], [""], images=drawn)[0] == pytest.approx(score)


def test_shape_classifier_on_drawn_silhouettes():
    for shape in ("circle", "square", "triangle", "diamond"):
        labels = palette_labels(pixels(Scene(shape, "green", 1, "left"), 64))[0]
        assert classify_shape(labels > 0) == shape


def test_blank_image_scores_zero_and_non_toy_prompts_get_none():
    blank = torch.full((2, 3, 32, 32), 235 / 127.5 - 1.0)
    assert toy_geneval(["a photo of a red circle", "a dog"], ["", ""], images=blank) == [0.0, None]


def test_bad_images_raise():
    with pytest.raises(ValueError, match="images"):
        toy_geneval(["a red circle"], [""])
    with pytest.raises(ValueError, match="one image per prompt"):
        toy_geneval(["a red circle"] * 2, ["", ""], images=torch.zeros(1, 3, 8, 8))


def test_registered_as_generation_reward():
    (func,) = build_reward_funcs(["toy_geneval"])
    assert func.task == "generate"
    assert func(["a photo of a red circle"], [""], images=pixels(Scene("circle", "red", 1, "top"))) == [1.0]
