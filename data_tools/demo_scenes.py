"""DEMO ONLY: synthetic scenes (one colour, one shape kind, 1-3 copies) drawn with PIL, with exact text.

A scene is small enough to describe exactly, so the demo gets correct multiple-choice QA, captions and
generation prompts without any model. Each caption/prompt names exactly one colour word from `COLORS`,
which is what the `demo_color` reward reads. Used by `make_demo_data.py` and `DemoCompletionBackend`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from PIL import Image, ImageDraw

from data_tools.toy_world import BACKGROUND, COLOR_RGB, COUNT_WORDS, SHAPES, WORLD_COLORS

# Drawn in the demo rewards' own colours and shapes (one table), so a scene scores highest against its own prompt.
COLORS = {name: tuple(round(255 * c) for c in COLOR_RGB[name]) for name in WORLD_COLORS}
POSITIONS = ("left", "right", "top", "bottom")


@dataclass(frozen=True)
class Scene:
    """What is drawn: `count` copies of `shape` in `color`; `position` only for a single shape, else "row"."""

    shape: str
    color: str
    count: int
    position: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def random_scene(rng: random.Random) -> Scene:
    count = rng.choice((1, 1, 2, 3))
    position = rng.choice(POSITIONS) if count == 1 else "row"
    return Scene(rng.choice(SHAPES), rng.choice(sorted(COLORS)), count, position)


def _boxes(scene: Scene, size: int) -> list[tuple[float, float, float, float]]:
    """Bounding boxes (x0, y0, x1, y1) of the shapes: a single shape sits in its half, copies form a row."""
    if scene.count == 1:
        r = size * 0.22
        cx, cy = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27), "bottom": (0.5, 0.73)}[scene.position]
        return [(cx * size - r, cy * size - r, cx * size + r, cy * size + r)]
    r = size / (2.6 * scene.count)
    step = size / scene.count
    return [(step * (i + 0.5) - r, size / 2 - r, step * (i + 0.5) + r, size / 2 + r) for i in range(scene.count)]


def draw_scene(scene: Scene, size: int = 64) -> Image.Image:
    """RGB image of the scene on a light-grey background."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    fill = COLORS[scene.color]
    for x0, y0, x1, y1 in _boxes(scene, size):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if scene.shape == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif scene.shape == "square":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        elif scene.shape == "triangle":
            draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
        else:
            draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    return image


def noun(scene: Scene) -> str:
    return scene.shape if scene.count == 1 else f"{scene.shape}s"


def describe(scene: Scene) -> str:
    """Caption naming count, colour, shape and position (its only colour word), e.g. "two red circles in a row ..."."""
    where = f"on the {scene.position}" if scene.count == 1 else "in a row"
    article = "a" if scene.count == 1 else COUNT_WORDS[scene.count]
    return f"{article} {scene.color} {noun(scene)} {where} on a plain light background"


def generation_prompt(scene: Scene) -> str:
    """Short text-to-image prompt with one colour word, e.g. "a photo of three blue squares"."""
    article = "a" if scene.count == 1 else COUNT_WORDS[scene.count]
    return f"a photo of {article} {scene.color} {noun(scene)}"


def _choices(correct: str, pool: list[str]) -> tuple[list[str], str]:
    """All four values of the asked property, always in the same order; returns (options, answer letter).

    Every property has exactly four values, so the options are the whole pool in a fixed order: the letter then
    depends only on what the image shows, which a toy model can learn in seconds (shuffled options would also need
    it to read the option texts).
    """
    return list(pool), chr(ord("A") + pool.index(correct))


def multiple_choice(scene: Scene, rng: random.Random) -> tuple[str, list[str], str]:
    """A correct 4-option question about the scene (the asked property drawn with `rng`): (stem, options, letter)."""
    kinds = ["count", "color", "shape"] + (["position"] if scene.count == 1 else [])
    kind = rng.choice(kinds)
    if kind == "count":
        stem = f"How many {scene.shape}s are in the image?"
        options, answer = _choices(str(scene.count), ["1", "2", "3", "4"])
    elif kind == "color":
        stem = f"What colour is the {scene.shape}?" if scene.count == 1 else f"What colour are the {scene.shape}s?"
        options, answer = _choices(scene.color, sorted(COLORS))
    elif kind == "shape":
        stem = f"What shape is the {scene.color} object?" if scene.count == 1 else "What shape are the objects?"
        options, answer = _choices(scene.shape, list(SHAPES))
    else:
        stem = f"Where is the {scene.color} {scene.shape} in the image?"
        options, answer = _choices(scene.position, list(POSITIONS))
    return stem, options, answer
