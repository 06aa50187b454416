"""UniRL training prompts (arXiv 2505.23380, §Data): GenEval-style prompts with a 4-option question, no images.

    python data_tools/make_unirl_prompts.py --out data/unirl_train.jsonl --num 5000 --seed 0 \
        [--exclude geneval/prompts/evaluation_metadata.jsonl]

Six categories with GenEval's prompt templates (single_object, two_object, counting, colors, position, color_attr)
over `data_tools/data/unirl_objects.json` (COCO's 80 classes plus about 100 more, each with its plural and
article) and GenEval's 10 colours. Each row asks one multiple-choice question whose answer is decided by the prompt
(options "A. ..".."D. .." plus the repo's answer instruction, letter answer), so the accuracy reward grades it.
Categories are dealt round-robin, so every category is present once `--num >= 6`; the output depends only on
the seed and the object list.

GenEval's 553 test prompts are held out. With `--exclude` (GenEval's `evaluation_metadata.jsonl`) exact matches
are removed. Without it a built-in rule of the template space applies: every prompt names at least one object
outside COCO's 80 classes; GenEval's prompts name COCO classes only, so none of them can be generated.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python data_tools/make_unirl_prompts.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_tools.jsonl import iter_jsonl, write_jsonl
from data_tools.multiple_choice import format_mcq
from data_tools.unirl_rows import GENEVAL_TAGS, SelfRow

OBJECTS_PATH = Path(__file__).resolve().parent / "data" / "unirl_objects.json"
# GenEval's colour list (its color and color_attr categories).
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
COUNT_WORDS = ("one", "two", "three", "four", "five", "six")
COUNTS = (2, 3, 4)  # GenEval's counting prompts use two..four
RELATIONS = ("left of", "right of", "above", "below")
MAX_DRAWS = 1000  # tries per row before giving up (held-out rules too strict for the object list)


@dataclass(frozen=True)
class ObjectName:
    """An object class; `article` is "a", "an" or "a pair of" (skis, scissors)."""

    name: str
    plural: str
    article: str
    coco: bool


@dataclass(frozen=True)
class Draft:
    """A prompt and its question before the options are shuffled: `options[0]` is the correct one."""

    prompt: str
    stem: str
    options: tuple[str, str, str, str]
    include: list[dict[str, Any]]
    exclude: list[dict[str, Any]]
    objects: tuple[ObjectName, ...]


def load_objects(path: str | Path = OBJECTS_PATH) -> list[ObjectName]:
    """The object list: a JSON array of `{name, plural, article, coco}`; a bad entry names its index and field."""
    entries = json.loads(Path(path).read_text(encoding="utf-8"))
    objects = []
    for i, entry in enumerate(entries):
        missing = [k for k in ("name", "plural", "article", "coco") if k not in entry]
        if missing:
            raise ValueError(f"{path}: entry {i}: missing field(s) {missing}; write {{name, plural, article, coco}}")
        objects.append(ObjectName(entry["name"], entry["plural"], entry["article"], bool(entry["coco"])))
    if len({o.name for o in objects}) != len(objects) or len(objects) < 8:
        raise ValueError(f"{path}: need at least 8 distinct object names; remove duplicates or add objects")
    return objects


def indefinite(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def phrase(obj: ObjectName, color: str | None = None) -> str:
    """'an apple', 'a red apple', 'an orange bench', 'a pair of red skis'."""
    if color is None:
        return f"{obj.article} {obj.name}"
    if obj.article == "a pair of":
        return f"a pair of {color} {obj.name}"
    return f"{indefinite(color)} {color} {obj.name}"


def _others(rng: random.Random, pool: list, exclude: list, k: int) -> list:
    return rng.sample([x for x in pool if x not in exclude], k)


def _single(rng: random.Random, objects: list[ObjectName]) -> Draft:
    x, *wrong = rng.sample(objects, 4)
    spec = [{"class": x.name, "count": 1}]
    options = (x.name, *(w.name for w in wrong))
    return Draft(f"a photo of {phrase(x)}", "Which object is shown in this image?", options, spec, [], (x,))


def _two(rng: random.Random, objects: list[ObjectName]) -> Draft:
    x, y, w, z = rng.sample(objects, 4)
    spec = [{"class": x.name, "count": 1}, {"class": y.name, "count": 1}]
    pairs = [(x, y), (x, z), (w, y), (w, z)]
    options = tuple(f"{a.name} and {b.name}" for a, b in pairs)
    stem = "Which two objects are shown in this image?"
    return Draft(f"a photo of {phrase(x)} and {phrase(y)}", stem, options, spec, [], (x, y))


def _counting(rng: random.Random, objects: list[ObjectName]) -> Draft:
    x = rng.choice(objects)
    count = rng.choice(COUNTS)
    gold = COUNT_WORDS[count - 1]
    options = (gold, *_others(rng, list(COUNT_WORDS), [gold], 3))
    spec = [{"class": x.name, "count": count}]
    stem = f"How many {x.plural} are in this image?"
    return Draft(f"a photo of {gold} {x.plural}", stem, options, spec, [{"class": x.name, "count": count + 1}], (x,))


def _colors(rng: random.Random, objects: list[ObjectName]) -> Draft:
    x = rng.choice(objects)
    color, *wrong = rng.sample(COLORS, 4)
    spec = [{"class": x.name, "count": 1, "color": color}]
    stem = f"What color is the {x.name} in this image?"
    return Draft(f"a photo of {phrase(x, color)}", stem, (color, *wrong), spec, [], (x,))


def _position(rng: random.Random, objects: list[ObjectName]) -> Draft:
    x, y = rng.sample(objects, 2)
    relation = rng.choice(RELATIONS)
    # GenEval's spec: the second object is the anchor, the first is `relation` of object 0.
    spec = [{"class": y.name, "count": 1}, {"class": x.name, "count": 1, "position": [relation, 0]}]
    options = (relation, *(r for r in RELATIONS if r != relation))
    stem = f"Where is the {x.name} relative to the {y.name} in this image?"
    return Draft(f"a photo of {phrase(x)} {relation} {phrase(y)}", stem, options, spec, [], (x, y))


def _color_attr(rng: random.Random, objects: list[ObjectName]) -> Draft:
    x, y = rng.sample(objects, 2)
    c1, c2, c3 = rng.sample(COLORS, 3)
    spec = [{"class": x.name, "count": 1, "color": c1}, {"class": y.name, "count": 1, "color": c2}]
    # The swapped colours are the distractor that tests attribution (which colour belongs to which object).
    combos = [(c1, c2), (c2, c1), (c1, c3), (c3, c2)]
    options = tuple(f"{a} {x.name} and {b} {y.name}" for a, b in combos)
    stem = f"What colors are the {x.name} and the {y.name} in this image?"
    prompt = f"a photo of {phrase(x, c1)} and {phrase(y, c2)}"
    return Draft(prompt, stem, options, spec, [], (x, y))


BUILDERS: dict[str, Callable[[random.Random, list[ObjectName]], Draft]] = {
    "single_object": _single,
    "two_object": _two,
    "counting": _counting,
    "colors": _colors,
    "position": _position,
    "color_attr": _color_attr,
}
assert tuple(BUILDERS) == GENEVAL_TAGS


def normalize_prompt(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def load_held_out(path: str | Path) -> set[str]:
    """Normalised prompts of a GenEval `evaluation_metadata.jsonl` (`{tag, include, prompt}` per line)."""
    prompts = set()
    for where, obj in iter_jsonl(path):
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str) or not obj["prompt"].strip():
            raise ValueError(f"{where}: prompt: missing; fix: pass GenEval's prompts/evaluation_metadata.jsonl")
        prompts.add(normalize_prompt(obj["prompt"]))
    return prompts


def is_held_out(draft: Draft, held_out: set[str] | None) -> bool:
    """Exact match with the GenEval file if given; else the built-in rule (COCO-only prompts are held out)."""
    if held_out is not None:
        return normalize_prompt(draft.prompt) in held_out
    return all(o.coco for o in draft.objects)


def to_row(draft: Draft, tag: str, rng: random.Random) -> SelfRow:
    """Shuffle the options and record the letter of the correct one."""
    order = list(range(4))
    rng.shuffle(order)
    question = format_mcq(draft.stem, [draft.options[i] for i in order])
    answer = "ABCD"[order.index(0)]
    return SelfRow(draft.prompt, question, answer, tag, draft.include, draft.exclude)


def build_rows(
    num: int, seed: int, objects: list[ObjectName] | None = None, held_out: set[str] | None = None
) -> list[SelfRow]:
    """`num` rows dealt round-robin over the six categories, drawn with `random.Random(seed)`."""
    if num < len(GENEVAL_TAGS):
        raise ValueError(f"--num {num}: need at least {len(GENEVAL_TAGS)} rows so every category is present")
    objects = load_objects() if objects is None else objects
    rng = random.Random(seed)
    rows = []
    for index in range(num):
        tag = GENEVAL_TAGS[index % len(GENEVAL_TAGS)]
        for _ in range(MAX_DRAWS):
            draft = BUILDERS[tag](rng, objects)
            if not is_held_out(draft, held_out):
                break
        else:
            raise ValueError(f"{tag}: every draw was held out after {MAX_DRAWS} tries; add non-test objects")
        rows.append(to_row(draft, tag, rng))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output JSONL (written atomically)")
    parser.add_argument("--num", type=int, required=True, help="number of rows (>= 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", help="GenEval evaluation_metadata.jsonl whose prompts are held out")
    parser.add_argument("--objects", default=str(OBJECTS_PATH), help="object list JSON (default: the repo's)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    if Path(args.out).exists() and not args.overwrite:
        parser.error(f"{args.out} exists; pass --overwrite to replace it")
    held_out = load_held_out(args.exclude) if args.exclude else None
    rows = build_rows(args.num, args.seed, load_objects(args.objects), held_out)
    write_jsonl(args.out, [row.to_dict() for row in rows])
    counts = Counter(row.tag for row in rows)
    print(f"wrote {len(rows)} rows to {args.out}: " + ", ".join(f"{t} {counts[t]}" for t in GENEVAL_TAGS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
