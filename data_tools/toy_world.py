"""DEMO ONLY: the toy world's vocabulary, one table for the scenes that draw it and the rewards that read it back.

Colour words with their RGB, the four colours and shapes a scene uses, count words and the background colour:
`data_tools.demo_scenes` draws with them, `rewards.reward_demo` / `rewards.reward_toy` score against them.
"""

from __future__ import annotations

# RGB in [0, 1] of every colour word the demo colour reward understands.
COLOR_RGB: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 0.5, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "orange": (1.0, 0.5, 0.0),
    "purple": (0.5, 0.0, 0.5),
    "pink": (1.0, 0.75, 0.8),
    "brown": (0.6, 0.3, 0.0),
    "black": (0.0, 0.0, 0.0),
    "white": (1.0, 1.0, 1.0),
    "gray": (0.5, 0.5, 0.5),
    "grey": (0.5, 0.5, 0.5),
    "cyan": (0.0, 1.0, 1.0),
}
# The colours and shapes scenes are drawn with (four each, so a multiple-choice question lists all of them).
WORLD_COLORS = ("blue", "green", "red", "yellow")
SHAPES = ("circle", "square", "triangle", "diamond")
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
BACKGROUND = (235, 235, 235)  # light grey, uint8 RGB
