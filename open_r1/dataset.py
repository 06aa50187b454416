"""The pair dataset PairGRPO trains on: a PairUG JSONL (data_tools.schema) as a flat `datasets.Dataset`.

Validation is the builder's (`data_tools.jsonl.scan_pairs`), so a bad line
fails here with the same `file:line: field: problem; fix` message as `python -m data_tools.validate`.
Relative image paths resolve against `image_root`, or the JSONL's folder when it is not given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import datasets

from data_tools.jsonl import scan_pairs
from data_tools.schema import PAIR_TYPES, Pair, resolve_image

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


def load_pair_dataset(
    path: str | Path,
    image_root: str | Path | None = None,
    skip_invalid: bool = False,
    pair_types: Sequence[str] | None = None,
) -> datasets.Dataset:
    """Load and validate a pair JSONL; columns are `PAIR_COLUMNS` (image paths absolute).

    Every line is checked before training starts, images included (opened and decoded), so a corrupt file
    cannot crash a step later. Invalid lines raise one `ValueError` listing each as `file:line: field: problem;
    fix`, or, with `skip_invalid`, are dropped with a warning that counts them. `pair_types` keeps only those
    pair types (the PairUni §4 pairing ablation, e.g. `["aligned"]`). An empty result raises `ValueError`.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pair file {str(path)!r} not found; fix: build it with `python data_tools/build_pairs.py`")
    root = Path(image_root) if image_root is not None else path.parent
    scanned, errors = scan_pairs(path, root)
    pairs = [pair for _, pair in scanned]
    if errors and not skip_invalid:
        raise ValueError(
            f"{len(errors)} invalid line(s) in {path} (fix them, or pass --skip_invalid to train without them):\n"
            + "\n".join(errors)
        )
    if errors:
        logger.warning("%s: skipped %d invalid line(s) (--skip_invalid):\n%s", path, len(errors), "\n".join(errors))
    if pair_types:
        _check_pair_types(pair_types)
        pairs = [p for p in pairs if p.pair_type in pair_types]
    if not pairs:
        kept = f" of pair_type {list(pair_types)}" if pair_types else ""
        raise ValueError(f"{path}: no valid pairs{kept}; fix: point to a non-empty PairUG JSONL")
    rows = [_row(pair, root) for pair in pairs]
    counts = {t: sum(r["pair_type"] == t for r in rows) for t in PAIR_TYPES}
    logger.info("loaded %d pairs from %s (%s; %d invalid skipped)", len(rows), path, counts, len(errors))
    columns = {name: [r[name] for r in rows] for name in PAIR_COLUMNS}
    features = datasets.Features(
        {name: datasets.Value("float64" if name == "similarity" else "string") for name in PAIR_COLUMNS}
    )
    return datasets.Dataset.from_dict(columns, features=features)


def _check_pair_types(pair_types: Sequence[str]) -> None:
    unknown = [t for t in pair_types if t not in PAIR_TYPES]
    if unknown:
        raise ValueError(f"pair_types: {unknown} not among {list(PAIR_TYPES)}; fix: e.g. --pair_types aligned")
