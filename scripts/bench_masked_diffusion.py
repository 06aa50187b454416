"""Benchmark the masked-diffusion samplers: one batched call (a generator per row) vs the batch-1 loop over rows.

The model is a random bidirectional Llama (transformers `LlamaForCausalLM` with a 4D all-True mask, as Lumina-DiMOO's
LLaDA body runs) with a Lumina-shaped vocabulary (text ids, then the image codebook). Reports generated tokens per
wall and CPU second and peak memory (medians of interleaved rounds, `scripts/bench_measure.py`), the speed-up, and
the share of tokens equal between the two under the same per-row seeds (batching changes float reductions, so a
near-tie may flip; the toy tests assert exact equality).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backbones.masked_diffusion import AtSlots, Canvas, TokenSpace
from backbones.maskgit_sampler import MaskGitOptions, sample_maskgit
from backbones.semi_ar_sampler import SemiARTextOptions, sample_semi_ar
from scripts.bench_measure import RowSampler, batched_vs_loop, print_comparisons, print_table

logger = logging.getLogger("bench_masked_diffusion")


@dataclass
class Setup:
    text_vocab: int
    codebook: int
    mask_id: int
    newline_id: int


def build_model(args: argparse.Namespace, setup: Setup, device: torch.device) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=setup.text_vocab + setup.codebook,
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 3,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        rope_theta=500000.0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).to(device).eval()


def slot_logits_fn(model: LlamaForCausalLM) -> AtSlots:
    """Bidirectional logits at the slots only (the head runs on N positions, not L)."""

    def run(ids: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(ids.shape[0], 1, ids.shape[1], ids.shape[1], dtype=torch.bool, device=ids.device)
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, L, D]
        picked = hidden[torch.arange(ids.shape[0], device=ids.device).unsqueeze(1), slots]  # [B, N, D]
        return model.lm_head(picked).float()

    return AtSlots(run)


def image_canvas(args: argparse.Namespace, setup: Setup, rows: int, device: torch.device) -> Canvas:
    """Lumina-style t2i rows: prompt, grid rows of masks each ending in an end-of-row token; uncond = short prefix."""
    generator = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, setup.mask_id, (rows, args.prompt_tokens), generator=generator)
    grid_row = torch.tensor([setup.mask_id] * args.grid + [setup.newline_id])
    grid = grid_row.repeat(args.grid).expand(rows, -1)
    ids = torch.cat([prompt, grid], 1).to(device)
    uncond = torch.cat([prompt[:, :4], grid], 1).to(device)
    slots = (grid[0] == setup.mask_id).nonzero()[:, 0].to(device)
    return Canvas(ids, (slots + args.prompt_tokens).expand(rows, -1), uncond, (slots + 4).expand(rows, -1))


def text_canvas(args: argparse.Namespace, setup: Setup, rows: int, device: torch.device) -> Canvas:
    generator = torch.Generator().manual_seed(2)
    prompt = torch.randint(0, setup.mask_id, (rows, args.prompt_tokens * 4), generator=generator)
    ids = torch.cat([prompt, torch.full((rows, args.answer_tokens), setup.mask_id)], 1).to(device)
    slots = torch.arange(prompt.shape[1], ids.shape[1], device=device).expand(rows, -1)
    return Canvas(ids, slots, torch.full_like(ids, setup.mask_id), slots)


def row_sampler(sample_rows: Callable, canvas: Canvas, device: torch.device) -> RowSampler:
    """Rows -> tokens [R, N] of those canvas rows, row r drawing from its own generator seeded r."""

    def sample(rows: Sequence[int]) -> torch.Tensor:
        generators = [torch.Generator(device).manual_seed(row) for row in rows]
        return sample_rows(canvas_rows(canvas, rows), generators).tokens

    return sample


def canvas_rows(canvas: Canvas, rows: Sequence[int]) -> Canvas:
    take = torch.tensor(list(rows), device=canvas.ids.device)
    uncond = None if canvas.uncond_ids is None else canvas.uncond_ids[take]
    uncond_slots = None if canvas.uncond_slots is None else canvas.uncond_slots[take]
    return Canvas(canvas.ids[take], canvas.slots[take], uncond, uncond_slots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--codebook", type=int, default=8192)
    parser.add_argument("--grid", type=int, default=16, help="image grid side (16 -> 256 codes)")
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--image-steps", type=int, default=35, help="PairUni App. E: 35")
    parser.add_argument("--answer-tokens", type=int, default=64)
    parser.add_argument("--text-steps", type=int, default=8)
    parser.add_argument("--block-length", type=int, default=32)
    parser.add_argument("--cfg", type=float, default=4.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    setup = Setup(text_vocab=1024, codebook=args.codebook, mask_id=1000, newline_id=1001)
    model = build_model(args, setup, device)
    logits_fn = slot_logits_fn(model)
    space = TokenSpace(setup.mask_id, offset=setup.text_vocab, size=setup.codebook)
    comparisons = []
    with torch.inference_mode():
        for schedule in ("lumina_dimoo", "showo"):
            options = MaskGitOptions(steps=args.image_steps, schedule=schedule, cfg_weight=args.cfg)
            sample = row_sampler(
                lambda c, g, o=options: sample_maskgit(logits_fn, c, space, o, generator=g),
                image_canvas(args, setup, args.rows, device),
                device,
            )
            comparisons.append(
                batched_vs_loop("random", f"maskgit {schedule}", sample, args.rows, args.rounds, device)
            )
        for noise in ("sequence", "slots"):
            options = SemiARTextOptions(
                steps=args.text_steps, block_length=args.block_length, temperature=1.0, noise=noise
            )
            sample = row_sampler(
                lambda c, g, o=options: sample_semi_ar(logits_fn, c, TokenSpace(setup.mask_id), o, generator=g),
                text_canvas(args, setup, args.rows, device),
                device,
            )
            name = f"semi-AR text ({noise})"
            comparisons.append(batched_vs_loop("random", name, sample, args.rows, args.rounds, device))
    print_table([r for c in comparisons for r in (c.batched, c.loop)])
    print_comparisons(comparisons)


if __name__ == "__main__":
    main()
