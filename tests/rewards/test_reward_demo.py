"""DEMO ONLY colour reward: colour words, exact values on flat images, ordering, rows without a colour."""

import pytest
import torch

from data_tools.toy_world import COLOR_RGB
from rewards.reward_demo import demo_color, find_color, mean_color_score


def _flat(rgb: tuple[float, float, float], size: int = 8) -> torch.Tensor:
    """A flat image [3, size, size] in [-1, 1] of colour `rgb` (in [0, 1])."""
    return (torch.tensor(rgb).view(3, 1, 1) * 2 - 1).expand(3, size, size)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [("a red apple", "red"), ("A Blue car next to a red one", "blue"), ("reddish sky", None), ("a dog", None)],
)
def test_find_color(prompt, expected):
    assert find_color(prompt) == expected


def test_exact_match_scores_one_and_opposite_scores_zero():
    images = torch.stack([_flat(COLOR_RGB["red"]), _flat(COLOR_RGB["cyan"]), _flat(COLOR_RGB["white"])])
    scores = demo_color(["a red ball", "a red ball", "a black cat"], [None] * 3, images=images)
    # red vs cyan and black vs white are the corners of the RGB cube furthest apart: distance sqrt(3) -> 0.
    assert scores == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)


def test_closer_colour_scores_higher_and_no_colour_is_none():
    images = torch.stack([_flat((0.9, 0.1, 0.1)), _flat((0.5, 0.3, 0.3)), _flat((0.9, 0.1, 0.1))])
    scores = demo_color(["a red ball", "a red ball", "a photo of a dog"], [None] * 3, images=images)
    assert scores[0] > scores[1] > 0.0
    assert scores[2] is None


def test_mean_color_score_validates_shape_and_images_argument():
    with pytest.raises(ValueError, match="images"):
        mean_color_score(torch.zeros(3, 8, 8), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="images"):
        demo_color(["a red ball"], [None])
    with pytest.raises(ValueError, match="images"):
        demo_color(["a red ball", "a red ball"], [None] * 2, images=torch.zeros(1, 3, 8, 8))
