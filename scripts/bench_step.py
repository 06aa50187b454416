"""Time one PairGRPO step and its parts, and the peak memory, on the tiny and a medium random Janus config.

    python scripts/bench_step.py                    # tiny + medium, 3 measured steps each, CPU or the first GPU
    python scripts/bench_step.py --configs medium --steps 5 --num_generations 8

Parts (seconds per optimizer step, from the trainer's `timing/*` metrics): image rollout (sampling + VQ decode),
answer rollout, rewards, log-prob forward per task, and the rest of the step (backward + optimizer + bookkeeping).
"medium" keeps the tiny vision tower / VQ / tokenizer and widens the language model (hidden 512, 8 layers), the
part whose cost dominates the rollouts. Random weights: timings only, no quality.
"""

import argparse
import json
import logging
import resource
import tempfile
from pathlib import Path

import torch
from PIL import Image
from transformers import JanusForConditionalGeneration

import janus
from data_tools.multiple_choice import MC_INSTRUCTION
from janus.backbone import JanusBackbone
from open_r1.configs import PairGRPOConfig
from open_r1.dataset import load_pair_dataset
from open_r1.trainer import PairGRPOTrainer
from rewards import build_reward_funcs

PARTS = (
    "generate_rollout",
    "understand_rollout",
    "rewards",
    "understand_logps_forward",
    "generate_logps_forward",
)
MEDIUM_TEXT = {"hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 8, "num_attention_heads": 8}
COLORS = ("red", "blue", "green", "yellow")


def write_pairs(folder: Path, num_pairs: int) -> Path:
    """Synthetic pairs: a coloured square, a 4-option colour question, a caption naming the colour."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(num_pairs):
        color = COLORS[i % len(COLORS)]
        path = folder / "images" / f"{i}.png"
        Image.new("RGB", (64, 64), color).save(path)
        options = "\n".join(f"{letter}. {c}" for letter, c in zip("ABCD", (color, *[c for c in COLORS if c != color])))
        question = f"What colour is the square?\n{options}\n{MC_INSTRUCTION}"
        lines.append(
            {
                "similarity": 1.0,
                "pair_type": "aligned",
                "generate_ann": {"image_path": str(path), "prompt": f"a {color} square"},
                "understand_ann": {"image_path": str(path), "question": question, "answer": "A"},
            }
        )
    out = folder / "pairs.jsonl"
    out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return out


def build_model(checkpoint: Path, size: str) -> tuple[JanusForConditionalGeneration, janus.JanusProcessor]:
    model, processor = janus.load_pretrained(checkpoint, dtype=torch.float32)
    if size == "medium":
        config = model.config
        for key, value in MEDIUM_TEXT.items():
            setattr(config.text_config, key, value)
        config.text_config.num_key_value_heads = MEDIUM_TEXT["num_attention_heads"]
        # The aligners and the generation head map to / from the LM width.
        config.vision_config.projection_dim = MEDIUM_TEXT["hidden_size"]
        config.vq_config.projection_dim = MEDIUM_TEXT["hidden_size"]
        config.vq_config.image_token_embed_dim = MEDIUM_TEXT["hidden_size"]
        torch.manual_seed(0)
        model = JanusForConditionalGeneration(config)
        model.generation_config = janus.load_pretrained(checkpoint)[0].generation_config
    return model, processor


def bench(size: str, checkpoint: Path, pairs: Path, args: argparse.Namespace, work: Path) -> dict:
    model, processor = build_model(checkpoint, size)
    config = PairGRPOConfig(
        output_dir=str(work / f"run_{size}"),
        num_generations_text=args.num_generations,
        num_generations_image=args.num_generations,
        per_device_train_batch_size=args.pairs_per_step,  # pairs (one process, no accumulation)
        max_steps=args.steps + 1,
        max_completion_length=args.max_completion_length,
        reward_funcs=["accuracy", "demo_color"],
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        log_images_steps=0,
        gradient_checkpointing=False,
        bf16=False,
        seed=0,
    )
    trainer = PairGRPOTrainer(
        model=model,
        backbone=JanusBackbone(processor),
        reward_funcs=build_reward_funcs(config.reward_funcs),
        args=config,
        train_dataset=load_pair_dataset(str(pairs)),
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    logs = [h for h in trainer.state.log_history if "step_time" in h][1:]  # drop the warm-up step
    row = {"config": size, "lm_params_M": sum(p.numel() for p in model.model.language_model.parameters()) / 1e6}
    row["step"] = sum(h["step_time"] for h in logs) / len(logs)
    for part in PARTS:
        row[part] = sum(h[f"timing/{part}"] for h in logs) / len(logs)
    row["backward_optim_other"] = row["step"] - sum(row[p] for p in PARTS)
    row["peak_mem_GiB"] = (
        torch.cuda.max_memory_allocated() / 2**30
        if torch.cuda.is_available()
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux
    )
    return row


def print_table(rows: list[dict]) -> None:
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{row[k]:.3f}" if isinstance(row[k], float) else str(row[k]) for k in keys) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,medium", help="comma-separated: tiny, medium")
    parser.add_argument("--steps", type=int, default=3, help="measured steps (one warm-up step is added)")
    parser.add_argument("--num_generations", type=int, default=4, help="K_u = K_g rollouts per pair")
    parser.add_argument("--pairs_per_step", type=int, default=2)
    parser.add_argument("--max_completion_length", type=int, default=32)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint = janus.build_tiny_checkpoint(work / "tiny", seed=0)
        pairs = write_pairs(work / "data", num_pairs=4 * args.pairs_per_step)
        rows = [bench(size, checkpoint, pairs, args, work) for size in args.configs.split(",")]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\nPairGRPO step on {device}; seconds per step, K={args.num_generations}, {args.pairs_per_step} pairs/step")
    print_table(rows)


if __name__ == "__main__":
    main()
