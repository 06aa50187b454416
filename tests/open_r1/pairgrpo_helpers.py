"""Helpers of the trainer tests: a small PairUG JSONL with real image files, tiny PairGRPO configs, synthetic rewards."""

import json

from PIL import Image

COLORS = ("red", "blue", "green", "yellow")
QUESTION = "What colour is the square?\nA. {0}\nB. {1}\nC. {2}\nD. {3}\nAnswer with the option's letter from the given choices directly."


def write_pairs(folder, num_pairs: int = 4, aligned_every: int = 2) -> str:
    """`num_pairs` pairs; every `aligned_every`-th is aligned (same image), the rest retrieved with s = 0.25."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(num_pairs):
        color = COLORS[i % len(COLORS)]
        path = folder / "images" / f"{i}.png"
        Image.new("RGB", (32, 32), color).save(path)
        aligned = i % aligned_every == 0
        options = [color] + [c for c in COLORS if c != color][:3]
        pair = {
            "similarity": 1.0 if aligned else 0.25,
            "pair_type": "aligned" if aligned else "retrieved",
            "generate_ann": {"image_path": str(path), "prompt": f"a {color} square", "tag": "demo"},
            "understand_ann": {
                "image_path": str(path),
                "question": QUESTION.format(*options),
                "answer": "A",
                "tag": "demo",
            },
        }
        lines.append(json.dumps(pair))
    out = folder / "pairs.jsonl"
    out.write_text("\n".join(lines) + "\n")
    return str(out)


def tiny_args(output_dir, **overrides):
    """A PairGRPOConfig for one-process CPU runs of the tiny checkpoint: 2 pairs x 4 rollouts per step."""
    from open_r1.configs import PairGRPOConfig

    kwargs = dict(
        output_dir=str(output_dir),
        num_generations_text=4,
        num_generations_image=4,
        per_device_train_batch_size=2,  # pairs
        bf16=False,  # explicit: the tests must not depend on whether the host has a GPU
        gradient_accumulation_steps=1,
        max_steps=1,
        max_completion_length=8,
        learning_rate=1e-2,
        logging_steps=1,
        report_to=[],
        reward_funcs=["vowel_share", "demo_color"],
        save_strategy="no",
        log_images_steps=0,
        gradient_checkpointing=False,
        seed=0,
    )
    kwargs.update(overrides)
    return PairGRPOConfig(**kwargs)


def vowel_share(prompts, completions, **kwargs):
    """Synthetic, learnable understanding reward: the share of vowels among the answer's letters."""
    rewards = []
    for text in completions:
        letters = [c for c in text.lower() if c.isalpha()]
        rewards.append(sum(c in "aeiou" for c in letters) / len(letters) if letters else 0.0)
    return rewards


def learnable_rewards():
    """Rewards with signal for a random tiny model: vowel share (understanding) and demo_color (generation)."""
    from rewards import RewardFunc, build_reward_funcs

    return [RewardFunc("vowel_share", "understand", vowel_share), *build_reward_funcs(["demo_color"])]
