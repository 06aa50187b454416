"""The pair dataset PairGRPO trains on: a PairUG JSONL (data_tools.schema) as a flat `datasets.Dataset`.

Lines are PairUG pairs, UniRL self rows (data_tools.unirl_rows: a prompt with a question about the image the model
will draw for it, no image file), or both mixed. A self row becomes a pair of `pair_type` "self" whose understanding
side asks about the image generated in the same rollout row (`own_image`), with pair weight 1 (similarity 1.0).
Validation is the builder's (`data_tools.schema` / `data_tools.unirl_rows` parsers, images decoded up front), so a
bad line fails here with the same `file:line: field: problem; fix` message as `python -m data_tools.validate`.
Relative image paths resolve against `image_root`, or the JSONL's folder when it is not given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import datasets

from data_tools.schema import PAIR_TYPES, Pair, resolve_image
from data_tools.unirl_rows import SelfRow, scan_rows

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
    "gen_question",  # a question about the generated image ("" when the generation sample has none)
    "gen_answer",
    "own_image",  # the understanding side asks about the image generated in the same rollout row (self rows)
)
# `pair_type` of a UniRL self row (not a PairUG pair type: it is never written by the pair builder).
SELF_PAIR_TYPE = "self"
ROW_TYPES = (*PAIR_TYPES, SELF_PAIR_TYPE)


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
        "gen_question": gen.question,  # PairUG's o3-written question about the prompt (the `self_check` reward)
        "gen_answer": gen.answer,
        "own_image": False,
    }


def _self_row(row: SelfRow) -> dict[str, object]:
    """A self row as a pair: the prompt is drawn, then its question is asked about that drawing (UniRL)."""
    return {
        "prompt": row.prompt,
        "gen_prompt": row.prompt,
        "und_image_path": "",  # no file: the rollout's decoded image takes its place
        "und_question": row.question,
        "und_answer": row.answer,
        "gen_image_path": "",
        "similarity": 1.0,  # pair weight 1 under every pair_weighting
        "pair_type": SELF_PAIR_TYPE,
        "und_tag": row.tag,
        "gen_tag": row.tag,
        "gen_question": row.question,
        "gen_answer": row.answer,
        "own_image": True,
    }


def _type(item: Pair | SelfRow) -> str:
    return item.pair_type if isinstance(item, Pair) else SELF_PAIR_TYPE


def load_pair_dataset(
    path: str | Path,
    image_root: str | Path | None = None,
    skip_invalid: bool = False,
    pair_types: Sequence[str] | None = None,
) -> datasets.Dataset:
    """Load and validate a pair JSONL (PairUG pairs and/or UniRL self rows); columns are `PAIR_COLUMNS`.

    Every line is checked before training starts, images included (opened and decoded), so a corrupt file
    cannot crash a step later. Invalid lines raise one `ValueError` listing each as `file:line: field: problem;
    fix`, or, with `skip_invalid`, are dropped with a warning that counts them. `pair_types` keeps only those
    pair types (the PairUni §4 pairing ablation, e.g. `["aligned"]`; "self" for the self rows). Image paths are
    absolute. An empty result raises `ValueError`.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pair file {str(path)!r} not found; fix: build it with `python data_tools/build_pairs.py`")
    root = Path(image_root) if image_root is not None else path.parent
    scanned, errors = scan_rows(path, root)
    pairs = [item for _, item in scanned]
    report_invalid_lines(path, errors, skip_invalid)
    if pair_types:
        _check_pair_types(pair_types)
        pairs = [p for p in pairs if _type(p) in pair_types]
    if not pairs:
        kept = f" of pair_type {list(pair_types)}" if pair_types else ""
        raise ValueError(f"{path}: no valid pairs{kept}; fix: point to a non-empty PairUG or self-row JSONL")
    rows = [_row(p, root) if isinstance(p, Pair) else _self_row(p) for p in pairs]
    counts = {t: sum(r["pair_type"] == t for r in rows) for t in ROW_TYPES}
    logger.info("loaded %d pairs from %s (%s; %d invalid skipped)", len(rows), path, counts, len(errors))
    columns = {name: [r[name] for r in rows] for name in PAIR_COLUMNS}
    dtypes = {"similarity": "float64", "own_image": "bool"}
    features = datasets.Features({name: datasets.Value(dtypes.get(name, "string")) for name in PAIR_COLUMNS})
    return datasets.Dataset.from_dict(columns, features=features)


def report_invalid_lines(path: str | Path, errors: list[str], skip_invalid: bool) -> None:
    """Raise one `ValueError` listing every invalid line, or (`skip_invalid`) warn with their count and list."""
    if errors and not skip_invalid:
        raise ValueError(
            f"{len(errors)} invalid line(s) in {path} (fix them, or pass --skip_invalid to train without them):\n"
            + "\n".join(errors)
        )
    if errors:
        logger.warning("%s: skipped %d invalid line(s) (--skip_invalid):\n%s", path, len(errors), "\n".join(errors))


def check_rows_for_method(method: str, dataset: datasets.Dataset, path: str | Path) -> None:
    """UniRL's GRPO (`method: unirl`) rewards images through their self-row question: without any self row every
    generation reward is None and the run trains on nothing, so refuse it before the model loads."""
    if method == "unirl" and not any(dataset["own_image"]):
        raise ValueError(
            f"method='unirl' but {path} holds no UniRL self rows (its {len(dataset)} rows are PairUG pairs), so "
            "unirl_image would give every image no reward; fix: build self rows with data_tools/make_unirl_prompts.py, "
            "or set method: pairgrpo"
        )


def _check_pair_types(pair_types: Sequence[str]) -> None:
    unknown = [t for t in pair_types if t not in ROW_TYPES]
    if unknown:
        raise ValueError(f"pair_types: {unknown} not among {list(ROW_TYPES)}; fix: e.g. --pair_types aligned")
