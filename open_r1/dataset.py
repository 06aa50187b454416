"""The pair dataset PairGRPO trains on: a PairUG JSONL (data_tools.schema) as a flat `datasets.Dataset`.

Validation is the builder's (`data_tools.schema.parse_pair` + `check_images`), so a bad line fails here
with the same `file:line: field: problem; fix` message as `python -m data_tools.validate`.
Relative image paths resolve against `image_root`, or the JSONL's folder when it is not given.
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets

from data_tools.jsonl import read_pairs
from data_tools.schema import Pair, check_images, resolve_image

logger = logging.getLogger(__name__)

PAIR_COLUMNS = (
    "prompt",
    "gen_prompt",
    "und_image_path",
    "und_question",
    "und_answer",
    "gen_image_path",
    "similarity",
    "pair_type",
    "und_tag",
    "gen_tag",
)


def _row(pair: Pair, image_root: Path) -> dict[str, object]:
    gen, und = pair.generate_ann, pair.understand_ann
    return {
        "prompt": gen.prompt,  # the generation caption C_g; TRL reads the `prompt` column
        "gen_prompt": gen.prompt,
        "und_image_path": str(resolve_image(und.image_path, image_root).resolve()),
        "und_question": und.question,
        "und_answer": und.answer,
        "gen_image_path": str(resolve_image(gen.image_path, image_root).resolve()) if gen.image_path else "",
        "similarity": float(pair.similarity),
        "pair_type": pair.pair_type,
        "und_tag": und.tag,
        "gen_tag": gen.tag,
    }


def load_pair_dataset(path: str | Path, image_root: str | Path | None = None) -> datasets.Dataset:
    """Load and validate a pair JSONL; columns are `PAIR_COLUMNS` (image paths absolute).

    Raises `ValueError` (`file:line: field: problem; fix`) for a schema error or a missing image, and for an
    empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pair file {str(path)!r} not found; fix: build it with `python data_tools/build_pairs.py`")
    root = Path(image_root) if image_root is not None else path.parent
    rows = []
    for where, pair in read_pairs(path):
        check_images(pair, where, root)
        rows.append(_row(pair, root))
    if not rows:
        raise ValueError(f"{path}: no pairs; fix: point to a non-empty PairUG JSONL")
    counts = {t: sum(r["pair_type"] == t for r in rows) for t in ("aligned", "retrieved")}
    logger.info("loaded %d pairs from %s (%s)", len(rows), path, counts)
    columns = {name: [r[name] for r in rows] for name in PAIR_COLUMNS}
    features = datasets.Features(
        {name: datasets.Value("float64" if name == "similarity" else "string") for name in PAIR_COLUMNS}
    )
    return datasets.Dataset.from_dict(columns, features=features)
