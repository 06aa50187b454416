"""The one PairUG pair schema (PairUni §1): input samples, annotations, pairs, and their validation.

Every reader of pair or input JSONL (builder, `data_tools.validate`, `open_r1.dataset`) parses through
here, so an error always reads `file:line: field: problem; fix: ...`. Image files are checked separately, as
that needs an image root: `check_images` (exist) and `pair_image_errors` / `undecodable_images` (decode).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data_tools.image_io import ImageDecodeError, open_rgb
from data_tools.multiple_choice import format_mcq, option_letters

# "random" marks the pairing ablation's random pairs (PairUni §4, `data_tools.random_pairs`).
PAIR_TYPES = ("aligned", "retrieved", "random")
# Threads decoding images up front: PIL releases the GIL while decoding, so checking overlaps I/O and decode.
IMAGE_CHECK_THREADS = 8


class SchemaError(ValueError):
    """A record that does not match the schema; the message says where, which field, and how to fix it."""

    def __init__(self, where: str, field_name: str, problem: str, fix: str):
        self.where, self.field_name, self.problem, self.fix = where, field_name, problem, fix
        super().__init__(f"{where}: {field_name}: {problem}; fix: {fix}")

    @property
    def line_no(self) -> int:
        """The line number in `where` ("file:line"), for listing errors in file order."""
        return int(self.where.rsplit(":", 1)[1])


def check_choice_answer(question: str, answer: str, where: str, field_name: str) -> None:
    """A multiple-choice question (one with option lines) must have one of its option letters as answer."""
    letters = option_letters(question)
    if letters and answer not in letters:
        raise SchemaError(
            where, field_name, f"answer {answer!r} is not one of the options {letters}", "use the option's letter"
        )


def string_field(obj: dict[str, Any], key: str, where: str, prefix: str = "", required: bool = True) -> str:
    """`obj[key]` as a string (None and absent read as ""); raises SchemaError if not a string, or empty if required."""
    value = obj.get(key, "")
    name = f"{prefix}{key}"
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise SchemaError(where, name, f"expected a string, got {type(value).__name__}", f"write {name} as a string")
    if required and not value.strip():
        raise SchemaError(where, name, "missing or empty", f"add a non-empty {name!r}")
    return value


def _tag(obj: dict[str, Any]) -> str:
    value = obj.get("tag", "")
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Annotation:
    """One side of a pair, in the released format (fields not known for that side are "")."""

    image_path: str
    prompt: str = ""
    question: str = ""
    answer: str = ""
    tag: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Pair:
    """A PairUG pair: generation side (prompt = caption C_g), understanding side (Q_u, A_u), similarity s_p."""

    similarity: float
    generate_ann: Annotation
    understand_ann: Annotation
    pair_type: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": self.similarity,
            "pair_type": self.pair_type,
            "generate_ann": self.generate_ann.to_dict(),
            "understand_ann": self.understand_ann.to_dict(),
        }


def _parse_annotation(obj: Any, where: str, side: str, required: tuple[str, ...]) -> Annotation:
    if not isinstance(obj, dict):
        raise SchemaError(
            where, side, f"expected an object, got {type(obj).__name__}", f"write {side} as a JSON object"
        )
    prefix = f"{side}."
    values = {
        k: string_field(obj, k, where, prefix, required=k in required) for k in ("image_path", "prompt", "question")
    }
    answer = obj.get("answer", "")
    values["answer"] = "" if answer is None else str(answer).strip()
    if "answer" in required and not values["answer"]:
        raise SchemaError(where, f"{prefix}answer", "missing or empty", f"add the correct answer to {side}")
    check_choice_answer(values["question"], values["answer"], where, f"{prefix}answer")
    return Annotation(tag=_tag(obj), **values)


def _parse_similarity(obj: dict[str, Any], where: str, pair_type: str) -> float:
    value = obj.get("similarity")
    if value is None:
        if pair_type == "aligned":
            return 1.0  # The release omits it for some aligned pairs: same image on both sides means s_p = 1.
        raise SchemaError(where, "similarity", f"missing for a {pair_type} pair", "add the image cosine similarity")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchemaError(where, "similarity", f"expected a finite number, got {value!r}", "write a float in [0, 1]")
    if not 0.0 <= value <= 1.0 + 1e-6:
        raise SchemaError(where, "similarity", f"{value} is outside [0, 1]", "write the cosine similarity in [0, 1]")
    return min(float(value), 1.0)


def parse_pair(obj: Any, where: str) -> Pair:
    """Parse one pair JSON object; `where` ("file:line") prefixes every error. Raises `SchemaError`.

    `pair_type` is optional for the released data: it is inferred as "aligned" when both sides use the
    same image, else "retrieved".
    """
    if not isinstance(obj, dict):
        raise SchemaError(where, "<line>", f"expected a JSON object, got {type(obj).__name__}", "one object per line")
    gen = _parse_annotation(obj.get("generate_ann"), where, "generate_ann", ("image_path", "prompt"))
    und = _parse_annotation(obj.get("understand_ann"), where, "understand_ann", ("image_path", "question", "answer"))
    pair_type = obj.get("pair_type")
    if pair_type is None:
        pair_type = "aligned" if gen.image_path == und.image_path else "retrieved"
    if pair_type not in PAIR_TYPES:
        raise SchemaError(where, "pair_type", f"{pair_type!r} is not one of {PAIR_TYPES}", "use one of those")
    return Pair(_parse_similarity(obj, where, pair_type), gen, und, pair_type)


def check_images(pair: Pair, where: str, image_root: Path) -> None:
    """Both images must exist (relative paths resolve against `image_root`). Raises `SchemaError`."""
    for side, ann in (("understand_ann", pair.understand_ann), ("generate_ann", pair.generate_ann)):
        path = resolve_image(ann.image_path, image_root)
        if not path.is_file():
            raise SchemaError(
                where, f"{side}.image_path", f"image {str(path)!r} not found", "fix the path or pass --image-root"
            )


def pair_image_errors(pairs: Sequence[tuple[str, Pair]], image_root: Path) -> dict[str, SchemaError]:
    """Decode every image of `pairs` (each file once); returns `{where: SchemaError}` for the lines with an image
    that is missing or cannot be decoded (truncated, empty, not an image)."""
    sides = [(where, f"{side}.image_path", str(resolve_image(ann.image_path, image_root)))
             for where, pair in pairs
             for side, ann in (("understand_ann", pair.understand_ann), ("generate_ann", pair.generate_ann))
             if ann.image_path]  # fmt: skip
    bad = undecodable_images(path for _, _, path in sides)
    errors: dict[str, SchemaError] = {}
    for where, field_name, path in sides:
        if path in bad and where not in errors:
            errors[where] = SchemaError(where, field_name, bad[path], "replace the file or drop the line")
    return errors


def undecodable_images(paths: Iterable[str]) -> dict[str, str]:
    """`{path: problem}` for the images that cannot be opened and fully decoded (each distinct path checked once)."""
    unique = list(dict.fromkeys(str(p) for p in paths))

    def problem(path: str) -> str | None:
        try:
            open_rgb(path, draft_size=64)
        except ImageDecodeError as err:
            return str(err)
        return None

    with ThreadPoolExecutor(max_workers=IMAGE_CHECK_THREADS) as pool:
        found = dict(zip(unique, pool.map(problem, unique), strict=True))
    return {path: message for path, message in found.items() if message is not None}


def resolve_image(image_path: str, image_root: Path) -> Path:
    """Absolute path of an image; relative paths are taken relative to `image_root`."""
    path = Path(image_path).expanduser()
    return path if path.is_absolute() else Path(image_root) / path


@dataclass(frozen=True)
class UnderstandingSample:
    """One input understanding example (image, question, answer); `image_path` is absolute after loading."""

    sample_id: str
    image_path: str
    question: str
    answer: str
    tag: str = ""
    options: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GenerationSample:
    """One input generation example (image, prompt); `image_path` is absolute after loading."""

    sample_id: str
    image_path: str
    prompt: str
    tag: str = ""


def parse_understanding(obj: Any, where: str, image_root: Path, sample_id: str) -> UnderstandingSample:
    """Parse an understanding input line: `image_path`, `question`, `answer`, optional `tag`, `options`.

    With `options` (a list of strings) the answer must be one of their letters, and the question is put
    in the released format if it does not list them itself.
    """
    if not isinstance(obj, dict):
        raise SchemaError(where, "<line>", f"expected a JSON object, got {type(obj).__name__}", "one object per line")
    image = string_field(obj, "image_path", where)
    question = string_field(obj, "question", where)
    answer = str(obj.get("answer", "") or "").strip()
    if not answer:
        raise SchemaError(where, "answer", "missing or empty", "add the correct answer")
    options = obj.get("options") or []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise SchemaError(where, "options", f"expected a list of strings, got {options!r}", "write options as [..]")
    if options and not option_letters(question):
        question = format_mcq(question, options)
    if options and answer not in [chr(ord("A") + i) for i in range(len(options))]:
        raise SchemaError(where, "answer", f"{answer!r} is not a letter among {len(options)} options", "use A, B, ...")
    check_choice_answer(question, answer, where, "answer")
    path = resolve_image(image, image_root)
    if not path.is_file():
        raise SchemaError(where, "image_path", f"image {str(path)!r} not found", "fix the path or the image root")
    return UnderstandingSample(sample_id, str(path), question, answer, _tag(obj), list(options))


def parse_generation(obj: Any, where: str, image_root: Path, sample_id: str) -> GenerationSample:
    """Parse a generation input line: `image_path`, `prompt`, optional `tag`."""
    if not isinstance(obj, dict):
        raise SchemaError(where, "<line>", f"expected a JSON object, got {type(obj).__name__}", "one object per line")
    image = string_field(obj, "image_path", where)
    prompt = string_field(obj, "prompt", where)
    path = resolve_image(image, image_root)
    if not path.is_file():
        raise SchemaError(where, "image_path", f"image {str(path)!r} not found", "fix the path or the image root")
    return GenerationSample(sample_id, str(path), prompt, _tag(obj))
