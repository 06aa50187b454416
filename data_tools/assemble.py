"""Assemble PairUG (PairUni §1 steps 4-5): aligned + retrieved pairs in the released JSONL schema, plus a summary.

Aligned pair: one medoid's image on both sides, prompt = caption C, question/answer = Q/A (from the
original sample or the completion), similarity 1.0. Retrieved pair: the generation sample's image and
prompt, the understanding sample's image, question and answer, and their image cosine similarity.
Image paths are written absolute, or relative to `relative_to` when given.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_tools.completion import Completion
from data_tools.jsonl import atomic_write_json, write_jsonl
from data_tools.retrieval import Match
from data_tools.schema import Annotation, GenerationSample, Pair, UnderstandingSample

logger = logging.getLogger(__name__)


def _path(image_path: str, relative_to: Path | None) -> str:
    # Inputs may carry cwd-relative paths (a relative --out or image root); the pair file must not depend on the cwd.
    return os.path.relpath(image_path, relative_to) if relative_to is not None else os.path.abspath(image_path)


def aligned_pair(done: Completion, relative_to: Path | None = None) -> Pair:
    ann = Annotation(_path(done.image_path, relative_to), done.caption, done.question, done.answer, done.tag)
    return Pair(1.0, ann, ann, "aligned")


def retrieved_pair(
    gen: GenerationSample, und: UnderstandingSample, similarity: float, relative_to: Path | None = None
) -> Pair:
    gen_ann = Annotation(_path(gen.image_path, relative_to), prompt=gen.prompt, tag=gen.tag)
    und_ann = Annotation(_path(und.image_path, relative_to), question=und.question, answer=und.answer, tag=und.tag)
    # Cosine of L2-normalised features can exceed 1 by float error; clamp so the schema's [0, 1] holds.
    return Pair(round(min(max(similarity, 0.0), 1.0), 6), gen_ann, und_ann, "retrieved")


def assemble_pairs(
    completions: Sequence[Completion | None],
    matches: Sequence[Match],
    gen_rest: Sequence[GenerationSample],
    und_rest: Sequence[UnderstandingSample],
    relative_to: Path | None = None,
) -> list[Pair]:
    """Aligned pairs (completions that survived verification) then retrieved pairs (`matches` index the
    remaining samples `gen_rest` / `und_rest`)."""
    pairs = [aligned_pair(c, relative_to) for c in completions if c is not None]
    pairs += [retrieved_pair(gen_rest[m.gen_index], und_rest[m.und_index], m.similarity, relative_to) for m in matches]
    return pairs


def summarize(pairs: Sequence[Pair]) -> dict:
    """Counts by pair type and tag, and similarity statistics of the retrieved (and any random) pairs."""
    summary = {
        "pairs": len(pairs),
        "by_type": dict(Counter(p.pair_type for p in pairs)),
        "by_und_tag": dict(Counter(p.understand_ann.tag for p in pairs)),
        "by_gen_tag": dict(Counter(p.generate_ann.tag for p in pairs)),
    }
    for pair_type in ["retrieved"] + (["random"] if "random" in summary["by_type"] else []):
        sims = np.array([p.similarity for p in pairs if p.pair_type == pair_type], dtype=np.float64)
        summary[f"{pair_type}_similarity"] = {
            "min": float(sims.min()) if len(sims) else None,
            "mean": float(sims.mean()) if len(sims) else None,
            "max": float(sims.max()) if len(sims) else None,
        }
    return summary


def plot_similarity_histogram(pairs: Sequence[Pair], path: str | Path) -> None:
    """PNG histogram of the retrieved (or random) pairs' similarities (matplotlib Agg, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sims = [p.similarity for p in pairs if p.pair_type != "aligned"]  # aligned pairs are 1.0 by construction
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(sims, bins=40, range=(0.0, 1.0), color="#4c72b0")
    ax.set_xlabel("image cosine similarity")
    ax.set_ylabel("pairs")
    ax.set_title(f"{len(sims)} retrieved / random pairs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(pairs: Sequence[Pair], output: str | Path, extra_summary: dict | None = None) -> dict:
    """Write `output` (JSONL), `<stem>.summary.json` and `<stem>.similarity.png`; returns the summary."""
    output = Path(output)
    write_jsonl(output, [p.to_dict() for p in pairs])
    summary = {**summarize(pairs), **(extra_summary or {})}
    atomic_write_json(output.with_suffix(".summary.json"), summary)
    plot_similarity_histogram(pairs, output.with_suffix(".similarity.png"))
    logger.info("wrote %d pairs to %s (%s)", len(pairs), output, summary["by_type"])
    return summary
