"""Benchmark rollouts: Janus-Pro image tokens (`janus.sample_image_tokens`, decode "compiled" and "eager") against
the original loop, and Lumina-DiMOO's masked-diffusion samplers batched against the original's batch-1 loop.

Measures tokens/s (per wall second and, robust to other processes on a shared CPU, per CPU second; medians
over interleaved rounds) and peak extra memory (CUDA: max_memory_allocated; CPU: peak RSS growth polled every 2 ms,
with glibc told to mmap every block of 64 KiB or more so that freed tensors leave the RSS at once).

Janus (configs tiny, medium): the tiny checkpoint and a medium random config (Llama LM 1024 x 12 layers, ~0.37 B
parameters; 64 image tokens instead of Janus-Pro's 576 by default, so that it finishes in a few minutes on a CPU).
Baselines on the same model and batch:
- "original loop": the DeepSeek inference script's loop (cond/uncond rows interleaved, no mask, KV cache from
  `past_key_values`, gen head on the last state, CFG mix, softmax, multinomial);
- "transformers generate": `model.generate(generation_mode="image")` (static cache, CFG processor).
Per decode mode it also reports, for steady-state steps (a step starts at its noise draw, `aten::exponential_`):
aten ops dispatched per step (TorchDispatchMode), host syncs per step (`aten::_local_scalar_dense`), whether the KV
cache storage stays at one address across steps, and for the compiled path its compile time, graph breaks and
the graphs compiled over a run with prompts of several lengths; plus the share of tokens equal to eager's and the
largest log-prob difference under the same seed.

Lumina-DiMOO (config lumina): the tiny random checkpoint in the original layout (or `--lumina_path`), through
`LuminaDiMOOBackbone`: images by the MaskGIT sampler with CFG (35 steps), answers by LLaDA's semi-autoregressive
sampler (2 steps, temperature 1, one image per row). "batched" is one call over rows of different prompt lengths
(padded, the 4D mask hides the pads) with one generator per row; "batch-1 loop" is the original's way (its
`generate_image` asserts B == 1): one call per row with that row's generator, which reproduces the original code's
tokens (the parity tests of tests/lumina_dimoo). The token check compares the two under the same per-row seeds: a
row draws from its own generator only and the mask keeps rows apart, so they agree up to float reductions of the
batched forward (a near-tie may flip; equal on the tiny model). `--lumina_method batched|loop` runs one side only,
to time the two as whole processes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch._dynamo.utils import counters
from transformers import GenerationConfig, JanusConfig, JanusForConditionalGeneration
from transformers.cache_utils import DynamicLayer

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import janus
from backbones.interface import AnswerSampling, ImageSampling
from janus import static_decode
from janus.forward import num_image_tokens
from janus.sampling import sample_image_tokens
from lumina_dimoo.backbone import LuminaDiMOOBackbone
from lumina_dimoo.tiny import build_tiny_checkpoint
from scripts.bench_measure import (
    LoopComparison,
    Result,
    batched_vs_loop,
    interleaved_runs,
    median_results,
    print_comparisons,
    print_table,
    release_freed_memory_to_os,
    row_methods,
)

logger = logging.getLogger("bench_rollout")


@torch.no_grad()
def original_loop(model, input_ids, uncond_input_ids, cfg_weight, temperature, generator) -> torch.Tensor:
    """The DeepSeek inference loop, written out: equal-length rows, cond/uncond interleaved, no attention mask."""
    n = input_ids.shape[0]
    steps = num_image_tokens(model)
    rows = torch.stack([input_ids, uncond_input_ids], dim=1).reshape(2 * n, -1)  # [2N, T]: cond, uncond, ...
    inputs_embeds = model.get_input_embeddings()(rows)
    tokens = input_ids.new_zeros(n, steps)
    past = None
    for step in range(steps):
        out = model.model.language_model(inputs_embeds=inputs_embeds, use_cache=True, past_key_values=past)
        past = out.past_key_values
        logits = model.model.generation_head(out.last_hidden_state[:, -1])  # [2N, V]
        cond, uncond = logits[0::2].float(), logits[1::2].float()
        probs = torch.softmax((uncond + cfg_weight * (cond - uncond)) / temperature, dim=-1)
        next_token = torch.multinomial(probs, num_samples=1, generator=generator)  # [N, 1]
        tokens[:, step] = next_token.squeeze(-1)
        both = torch.cat([next_token, next_token], dim=1).reshape(-1)  # [2N]: same token for cond and uncond
        inputs_embeds = model.prepare_embeddings_for_image_generation(both).unsqueeze(1)  # [2N, 1, D]
    return tokens


@torch.no_grad()
def transformers_generate(model, input_ids, attention_mask, special, cfg_weight, temperature) -> torch.Tensor:
    """transformers' own Janus image generation (unbatched-CFG by repeat, static cache)."""
    config = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        guidance_scale=cfg_weight,
        bos_token_id=special["bos"],
        pad_token_id=special["pad"],
        eos_token_id=special["eos"],
        max_new_tokens=num_image_tokens(model),
        generation_kwargs={"boi_token_id": special["boi"]},
    )
    return model.generate(input_ids, attention_mask=attention_mask, generation_config=config, generation_mode="image")


def medium_model(grid: int, seed: int) -> JanusForConditionalGeneration:
    """Random Janus layout with a 1024 x 12 Llama LM, Janus-Pro vocab/codebook sizes, grid x grid image tokens."""
    torch.manual_seed(seed)
    text = dict(
        model_type="llama",
        vocab_size=102400,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=12,
        num_attention_heads=16,
        num_key_value_heads=16,
        max_position_embeddings=4096,
    )
    vision = dict(hidden_size=256, num_hidden_layers=2, num_attention_heads=4, image_size=16 * grid, patch_size=16)
    vision |= dict(projection_dim=1024, num_image_tokens=grid * grid)
    vq = dict(num_embeddings=16384, embed_dim=8, base_channels=32, latent_channels=32, num_res_blocks=1)
    vq |= dict(projection_dim=1024, image_token_embed_dim=1024)
    config = JanusConfig(text_config=text, vision_config=vision, vq_config=vq, image_token_id=100581)
    config.tie_word_embeddings = False
    return JanusForConditionalGeneration(config).eval()


def prompt_batch(processor, rows: int, prompt: str):
    """Equal-length rows (one prompt repeated) so the unmasked original loop is valid on them."""
    return processor.encode_generation([prompt] * rows)


@dataclass
class Diagnostics:
    ops_per_step: float
    syncs_per_step: float
    cache_addresses: int  # distinct data_ptrs of layer 0's key cache over the steps (1 = storage reused)
    compile_s: float | None = None
    graph_breaks: int | None = None
    graphs_varied_prompts: int | None = None


def cache_addresses(run: Callable[[], object], decode: str) -> int:
    """Distinct addresses of layer 0's key cache seen over one run (eager: the growing DynamicCache)."""
    seen = set()
    if decode == "eager":
        original = DynamicLayer.update

        def update(self, *args, **kwargs):
            keys, values = original(self, *args, **kwargs)
            if self is self_layers[0]:
                seen.add(keys.data_ptr())
            return keys, values

        self_layers: list = []
        original_lazy = DynamicLayer.lazy_initialization

        def lazy(self, *args, **kwargs):
            self_layers.append(self)
            return original_lazy(self, *args, **kwargs)

        DynamicLayer.update, DynamicLayer.lazy_initialization = update, lazy
        try:
            run()
        finally:
            DynamicLayer.update, DynamicLayer.lazy_initialization = original, original_lazy
        return len(seen)
    original_step = static_decode.compiled_step

    def recording_step(step, device):
        compiled = original_step(step, device)

        def call(model, kv, state, *args):
            seen.add(kv.keys[0].data_ptr())
            return compiled(model, kv, state, *args)

        return call

    static_decode.compiled_step = recording_step
    try:
        run()
    finally:
        static_decode.compiled_step = original_step
    return len(seen)


def diagnose(model, processor, batch, args, decode: str) -> Diagnostics:
    """Compile (timed, compiled only), then count ops/syncs per step, cache addresses, graph breaks, recompiles."""

    def run(prompt_batch=batch):
        generator = torch.Generator(model.device).manual_seed(args.seed)
        return sample_image_tokens(model, prompt_batch, cfg_weight=args.cfg_weight, generator=generator, decode=decode)

    compile_s = graph_breaks = graphs = None
    if decode == "compiled":
        counters.clear()
        start = time.perf_counter()
        run()  # the first call compiles
        compile_s = time.perf_counter() - start
        graph_breaks = sum(counters["graph_break"].values())
    ops_per_step, syncs_per_step = static_decode.steady_step_op_counts(run)
    addresses = cache_addresses(run, decode)
    if decode == "compiled":
        # Prompts of several lengths (one batch each): the bucketed cache keeps the compiled graphs bounded.
        before = counters["stats"]["unique_graphs"]
        for words in (1, 5, 30, 150):
            run(processor.encode_generation([" ".join(["apple"] * words)] * args.rows).to(model.device))
        graphs = counters["stats"]["unique_graphs"] - before
    if static_decode.compilation_failed():
        raise RuntimeError(
            "the compiled decode fell back to eager (see the warning above); its figures would be eager's"
        )
    return Diagnostics(ops_per_step, syncs_per_step, addresses, compile_s, graph_breaks, graphs)


def bench_model(name: str, model, processor, args) -> tuple[list[Result], dict[str, Diagnostics], dict[str, float]]:
    device = model.device
    batch = prompt_batch(processor, args.rows, args.prompt).to(device)
    special = processor.special
    ids = {"bos": special.bos_id, "eos": special.eos_id, "pad": special.pad_id, "boi": special.boi_id}
    steps = num_image_tokens(model)
    decodes = args.decode.split(",")
    diagnostics = {decode: diagnose(model, processor, batch, args, decode) for decode in decodes}

    def sampler(decode: str) -> Callable[[], torch.Tensor]:
        def run():
            generator = torch.Generator(device).manual_seed(args.seed)
            return sample_image_tokens(
                model, batch, cfg_weight=args.cfg_weight, generator=generator, return_logps=True, decode=decode
            )

        return run

    def original():
        generator = torch.Generator(device).manual_seed(args.seed)
        return original_loop(model, batch.input_ids, batch.uncond_input_ids, args.cfg_weight, 1.0, generator)

    def hf():
        return transformers_generate(model, batch.input_ids, batch.attention_mask, ids, args.cfg_weight, 1.0)

    methods = {f"janus {decode}": sampler(decode) for decode in decodes} | {"original loop": original}
    if not args.skip_transformers_generate:
        methods["transformers generate"] = hf
    runs = interleaved_runs(methods, args.repeats, device, name)
    results = median_results(name, runs, args.rows, steps)
    agreement = {}
    if {"compiled", "eager"} <= set(decodes):
        eager, compiled = runs["janus eager"][0][0], runs["janus compiled"][0][0]
        agreement["same tokens"] = float((eager.tokens == compiled.tokens).float().mean())
        agreement["max |logp diff|"] = float((eager.logps - compiled.logps).abs().max())
    return results, diagnostics, agreement


def print_diagnostics(name: str, diagnostics: dict[str, Diagnostics], agreement: dict[str, float]) -> None:
    for decode, d in diagnostics.items():
        line = (
            f"{name:<7} {decode:<9} ops/step {d.ops_per_step:>6.0f}  host syncs/step {d.syncs_per_step:.0f}  "
            f"KV cache addresses over the run {d.cache_addresses}"
        )
        if d.compile_s is not None:
            line += (
                f"  compile {d.compile_s:.1f} s  graph breaks {d.graph_breaks}  "
                f"graphs compiled over 4 prompt lengths {d.graphs_varied_prompts}"
            )
        print(line)
    if agreement:
        print(f"{name:<7} compiled vs eager (same seed): " + ", ".join(f"{k} {v:.4g}" for k, v in agreement.items()))


# ---------------------------------------------------------------------------------------------------------- Lumina

LUMINA_PROMPTS = (
    "A photo of a red apple on a wooden table.",
    "A blue car.",
    "Two cats sit on a yellow sofa next to a green tree.",
    "An orange cat sleeping in the sun.",
)  # different lengths: the batched rows are padded, the batch-1 rows are not
LUMINA_QUESTIONS = (
    ("What is in the image?", "red", (64, 48)),
    ("How many birds are there? A. one B. two", "blue", (32, 32)),
    ("What color is the sky?", "green", (48, 64)),
    ("What is on the table? Answer with the option's letter.", "white", (64, 64)),
)


def lumina_checkpoint(out_dir: str | Path, image_size: int) -> Path:
    """The tiny random Lumina-DiMOO checkpoint (original layout), generating `image_size`^2-pixel images."""
    path = build_tiny_checkpoint(out_dir)
    config_file = path / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["pairuni_image_size"] = image_size  # the backbone's generated-image grid: (image_size / 16)^2 codes
    config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def row_generators(rows: Sequence[int], seed: int, device: torch.device) -> list[torch.Generator]:
    """One generator per row, seeded from the row's index: a row's draws do not depend on its batch."""
    return [torch.Generator(device).manual_seed(seed + row) for row in rows]


def lumina_image_sampler(backbone: LuminaDiMOOBackbone, model, args: argparse.Namespace) -> Callable:
    """Rows -> image codes [R, h*w] by Lumina's MaskGIT sampler with CFG (the backbone's `sample_images`)."""
    options = ImageSampling(cfg_weight=args.lumina_cfg, temperature=1.0, steps=args.lumina_image_steps)
    device = next(model.parameters()).device

    def sample(rows: Sequence[int]) -> torch.Tensor:
        prompts = [LUMINA_PROMPTS[row % len(LUMINA_PROMPTS)] for row in rows]
        generators = row_generators(rows, args.seed, device)
        return backbone.sample_images(model, prompts, options, generators, decode=False).rollout.completion_ids

    return sample


def lumina_text_sampler(backbone: LuminaDiMOOBackbone, model, args: argparse.Namespace) -> Callable:
    """Rows -> answer tokens [R, L] by LLaDA's semi-autoregressive sampler at temperature 1, one image per row
    (encoded by the VQ inside the call, as in a rollout)."""
    length = args.lumina_answer_tokens
    options = AnswerSampling(
        max_new_tokens=length, steps=args.lumina_text_steps, block_length=args.lumina_block_length or length
    )
    device = next(model.parameters()).device

    def sample(rows: Sequence[int]) -> torch.Tensor:
        picked = [LUMINA_QUESTIONS[row % len(LUMINA_QUESTIONS)] for row in rows]
        images = [Image.new("RGB", size, color) for _, color, size in picked]
        generators = row_generators(rows, args.seed, device)
        rollout = backbone.sample_answers(model, [q for q, _, _ in picked], images, options, generator=generators)
        return rollout.completion_ids

    return sample


def bench_lumina(args: argparse.Namespace, out_dir: str | Path) -> tuple[list[Result], list[LoopComparison]]:
    """Lumina-DiMOO image and text rollouts on the tiny checkpoint: one batched call (a generator per row) against
    the original's way, one call per row at batch 1 (`generate_image` asserts B == 1)."""
    path = args.lumina_path or lumina_checkpoint(out_dir, args.lumina_image_size)
    backbone, model = LuminaDiMOOBackbone.load(path, device=args.device)
    model.eval()
    backbone.text_noise = args.lumina_text_noise
    device = torch.device(args.device)
    samplers = {"image": lumina_image_sampler, "text": lumina_text_sampler}
    results, comparisons = [], []
    for task in args.lumina_tasks.split(","):
        if task not in samplers:
            raise ValueError(f"--lumina_tasks entry {task!r} is unknown; use image and/or text.")
        sample = samplers[task](backbone, model, args)
        name = f"lumina {task}"
        with torch.inference_mode():
            if args.lumina_method == "both":
                comparisons.append(batched_vs_loop("lumina", name, sample, args.rows, args.repeats, device))
                results += [comparisons[-1].batched, comparisons[-1].loop]
                continue
            # One method per process, to time the two as whole processes against each other (no warm-up call:
            # both processes pay the same start-up).
            methods = row_methods(name, sample, args.rows)
            method = f"{name} {'batched' if args.lumina_method == 'batched' else 'batch-1 loop'}"
            runs = interleaved_runs({method: methods[method]}, args.repeats, device, "lumina")
            results += median_results("lumina", runs, args.rows, runs[method][0][0].shape[1])
    return results, comparisons


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,medium,lumina", help="Comma list of: tiny, medium, lumina.")
    parser.add_argument("--rows", type=int, default=4, help="Rows sampled together (N; 2N forwards with CFG).")
    parser.add_argument("--medium_grid", type=int, default=8, help="Medium config: grid^2 image tokens (24 = 576).")
    parser.add_argument("--cfg_weight", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved timed rounds (medians are reported).")
    parser.add_argument(
        "--decode", default="compiled,eager", help="Comma list of janus sampler decodes to run side by side."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's).")
    parser.add_argument("--prompt", default="A photo of a red apple on a wooden table.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip_transformers_generate", action="store_true")
    lumina = parser.add_argument_group("lumina", "The tiny random Lumina-DiMOO (config lumina).")
    lumina.add_argument("--lumina_tasks", default="image,text", help="Comma list of: image, text.")
    lumina.add_argument(
        "--lumina_method",
        choices=("both", "batched", "loop"),
        default="both",
        help="both: batched vs the batch-1 loop side by side, with the token check; batched / loop: that one only.",
    )
    lumina.add_argument(
        "--lumina_path",
        default=None,
        help="A Lumina-DiMOO checkpoint folder (original layout). Default: the tiny random one, in a temp folder.",
    )
    lumina.add_argument(
        "--lumina_image_size", type=int, default=128, help="Tiny checkpoint's generated pixels (128: 8 x 8 codes)."
    )
    lumina.add_argument("--lumina_image_steps", type=int, default=35, help="MaskGIT steps (PairUni App. E: 35).")
    lumina.add_argument("--lumina_cfg", type=float, default=4.0, help="CFG w of (1+w) c - w u (Lumina's t2i: 4).")
    lumina.add_argument("--lumina_answer_tokens", type=int, default=32)
    lumina.add_argument("--lumina_text_steps", type=int, default=2, help="Text decode steps (PairUni App. E: 2).")
    lumina.add_argument("--lumina_block_length", type=int, default=None, help="Default: the answer length.")
    lumina.add_argument(
        "--lumina_text_noise",
        choices=("slots", "sequence"),
        default="slots",
        help="LLaDA noise at the answer slots (the backbone's default) or over the sequence (the original's draw).",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu":
        release_freed_memory_to_os()
    names = args.configs.split(",")
    unknown = sorted(set(names) - {"tiny", "medium", "lumina"})
    if unknown:
        raise ValueError(f"--configs entries {unknown} are unknown; use tiny, medium and/or lumina.")
    results, reports, comparisons = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        if {"tiny", "medium"} & set(names):
            model, processor = janus.load_pretrained(
                janus.build_tiny_checkpoint(Path(tmp, "janus")), device=args.device
            )
        for name in names:
            if name == "tiny":
                config_results, diagnostics, agreement = bench_model("tiny", model, processor, args)
            elif name == "medium":
                # The tiny checkpoint's processor supplies prompts; the ids fit the medium vocab (102400).
                medium = medium_model(args.medium_grid, args.seed).to(args.device)
                params = sum(p.numel() for p in medium.parameters())
                logger.info("medium config: %.0f M parameters, %d image tokens", params / 1e6, args.medium_grid**2)
                config_results, diagnostics, agreement = bench_model("medium", medium, processor, args)
            else:
                config_results, lumina_comparisons = bench_lumina(args, Path(tmp, "lumina"))
                results += config_results
                comparisons += lumina_comparisons
                continue
            results += config_results
            reports.append((name, diagnostics, agreement))
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}")
    print_table(results)
    print()
    for report in reports:
        print_diagnostics(*report)
    print_comparisons(comparisons)


if __name__ == "__main__":
    main()
