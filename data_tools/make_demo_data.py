"""DEMO ONLY: write the CPU demo's synthetic inputs (and, with --pairs, build a small pair set from them).

    python data_tools/make_demo_data.py --out demo_data [--num-understanding 48 --num-generation 48 --seed 0]
    python data_tools/make_demo_data.py --out demo_data --pairs     # + demo_data/pairs/pairs.jsonl, seconds

Writes `images/*.png` (64x64 scenes of coloured shapes), `understanding.jsonl` (4-option questions with
letter answers and `options`), `generation.jsonl` (prompts naming one colour, for the `demo_color` reward)
and `scenes.json` (what each image shows; read by the offline `DemoCompletionBackend`). Deterministic by seed.
"""

from __future__ import annotations

import argparse
import logging
import random
from pathlib import Path

from data_tools.demo_scenes import Scene, draw_scene, generation_prompt, multiple_choice, random_scene
from data_tools.jsonl import atomic_write_json, write_jsonl
from data_tools.multiple_choice import format_mcq

logger = logging.getLogger(__name__)
SCENES_FILE = "scenes.json"


def _write_side(out: Path, side: str, num: int, rng: random.Random, size: int, scenes: dict) -> list[dict]:
    records = []
    for i in range(num):
        scene: Scene = random_scene(rng)
        rel = f"images/{side}_{i:04d}.png"
        draw_scene(scene, size).save(out / rel)
        scenes[rel] = scene.to_dict()
        if side == "und":
            stem, options, answer = multiple_choice(scene, rng)
            question = format_mcq(stem, options)
            records.append({"id": f"und_{i:04d}", "image_path": rel, "question": question, "options": options,
                            "answer": answer, "tag": "demo_shapes"})  # fmt: skip
        else:
            records.append({"id": f"gen_{i:04d}", "image_path": rel, "prompt": generation_prompt(scene),
                            "tag": "demo_shapes"})  # fmt: skip
    return records


def make_demo_data(
    out: str | Path, num_understanding: int = 48, num_generation: int = 48, seed: int = 0, size: int = 64
) -> dict[str, Path]:
    """Write the demo inputs under `out`; returns the paths of the two JSONL files and the scene metadata."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    scenes: dict[str, dict] = {}
    und = _write_side(out, "und", num_understanding, rng, size, scenes)
    gen = _write_side(out, "gen", num_generation, rng, size, scenes)
    paths = {"understanding": out / "understanding.jsonl", "generation": out / "generation.jsonl"}
    write_jsonl(paths["understanding"], und)
    write_jsonl(paths["generation"], gen)
    paths["scenes"] = out / SCENES_FILE
    atomic_write_json(paths["scenes"], scenes)
    logger.info("wrote %d understanding + %d generation demo samples to %s", len(und), len(gen), out)
    return paths


def demo_build_args(paths: dict[str, Path], work_dir: Path, num_clusters: int = 8) -> list[str]:
    """`build_pairs` arguments for the demo: random-init features at 64 px, demo completion backend."""
    return [
        "--understanding", str(paths["understanding"]),
        "--generation", str(paths["generation"]),
        "--work-dir", str(work_dir),
        "--output", str(work_dir / "pairs.jsonl"),
        "--random-init", "--image-size", "64",
        "--num-clusters", str(num_clusters),
        "--backend", "demo", "--demo-scenes", str(paths["scenes"]),
        "--threshold", "0.6",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo_data"), help="output folder")
    parser.add_argument("--num-understanding", type=int, default=48)
    parser.add_argument("--num-generation", type=int, default=48)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", action="store_true", help="also build <out>/pairs/pairs.jsonl (demo backend)")
    parser.add_argument("--num-clusters", type=int, default=8, help="K for the demo build (aligned pairs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    paths = make_demo_data(args.out, args.num_understanding, args.num_generation, args.seed, args.size)
    if args.pairs:
        from data_tools.build_pairs import main as build_main

        build_main(demo_build_args(paths, args.out / "pairs", args.num_clusters))


if __name__ == "__main__":
    main()
