"""DEMO ONLY: an offline, deterministic stand-in for the completion LLM that knows the demo scenes.

It reads `scenes.json` written by `make_demo_data.py` and answers the same structured requests as
`OpenAIBackend` from the scene's ground truth: captions via `demo_scenes.describe`, questions via
`demo_scenes.multiple_choice`, and verdicts by really checking the draft against the scene (so the
verify/regenerate path runs). It cannot annotate any other image; it exists so the README demo needs
no API key.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from data_tools.completion import Caption, ChatRequest, MultipleChoice, Reply, Verdict
from data_tools.demo_scenes import COLORS, SHAPES, Scene, describe, multiple_choice
from data_tools.multiple_choice import parse_options


class DemoCompletionBackend:
    """Answers caption / mcq / verify requests for images listed in a demo `scenes.json`."""

    model = "demo-scenes"

    def __init__(self, scenes_path: str | Path):
        scenes_path = Path(scenes_path)
        raw = json.loads(scenes_path.read_text())
        self.scenes = {str((scenes_path.parent / rel).resolve()): Scene(**scene) for rel, scene in raw.items()}

    def _scene(self, image_path: str) -> Scene:
        key = str(Path(image_path).resolve())
        if key not in self.scenes:
            raise ValueError(f"image_path {image_path!r} is not a demo scene; fix: use --backend openai for real data")
        return self.scenes[key]

    def __call__(self, request: ChatRequest) -> Reply:
        scene = self._scene(request.image_path)
        if request.task == "caption":
            return Reply(Caption(caption=describe(scene)))
        if request.task == "mcq":
            seed = int(hashlib.sha256(request.image_path.encode()).hexdigest()[:8], 16)
            stem, options, answer = multiple_choice(scene, random.Random(seed))
            return Reply(MultipleChoice(question=stem, options=options, answer=answer))
        if request.task == "verify_caption":
            return Reply(_verify_caption(scene, request.context["caption"]))
        if request.task == "verify_mcq":
            return Reply(_verify_mcq(scene, request.context["question"], request.context["answer"]))
        raise ValueError(f"task {request.task!r} unknown to the demo backend")


def _verify_caption(scene: Scene, caption: str) -> Verdict:
    words = caption.lower()
    wrong_colors = [c for c in COLORS if c in words and c != scene.color]
    wrong_shapes = [s for s in SHAPES if s in words and s != scene.shape]
    missing = scene.color not in words or scene.shape not in words
    reason = f"mentions {wrong_colors + wrong_shapes}" if wrong_colors or wrong_shapes else "consistent with the scene"
    if missing:
        reason = f"does not name the {scene.color} {scene.shape}"
    return Verdict(contradiction=missing, hallucination=bool(wrong_colors or wrong_shapes), reason=reason)


def _verify_mcq(scene: Scene, question: str, answer: str) -> Verdict:
    chosen = parse_options(question).get(answer, "").strip()
    truths = {str(scene.count), scene.color, scene.shape, scene.position}
    ok = chosen in truths
    return Verdict(contradiction=not ok, hallucination=False, reason=f"answer {answer}={chosen!r}; scene {scene}")
