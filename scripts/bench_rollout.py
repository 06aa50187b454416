"""Benchmark image-token rollouts: `janus.sample_image_tokens` (decode="compiled" and "eager") against the original loop.

Measures image tokens/s (per wall second and, robust to other processes on a shared CPU, per CPU second; medians
over interleaved rounds) and peak extra memory (CUDA: max_memory_allocated; CPU: peak RSS growth polled every 2 ms,
with glibc told to mmap every block of 64 KiB or more so that freed tensors leave the RSS at once) on the tiny
checkpoint and on a medium random config (Llama LM 1024 x 12 layers, ~0.37 B parameters; 64 image tokens instead of
Janus-Pro's 576 by default, so that it finishes in a few minutes on a CPU). Baselines on the same model and batch:
- "original loop": the DeepSeek inference script's loop (cond/uncond rows interleaved, no mask, KV cache from
  `past_key_values`, gen head on the last state, CFG mix, softmax, multinomial);
- "transformers generate": `model.generate(generation_mode="image")` (static cache, CFG processor).
Per decode mode it also reports, for steady-state steps (a step starts at its noise draw, `aten::exponential_`):
aten ops dispatched per step (TorchDispatchMode), host syncs per step (`aten::_local_scalar_dense`), whether the KV
cache storage stays at one address across steps, and for the compiled path its compile time, graph breaks and
the graphs compiled over a run with prompts of several lengths; plus the share of tokens equal to eager's and the
largest log-prob difference under the same seed.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import torch
from torch._dynamo.utils import counters
from transformers import GenerationConfig, JanusConfig, JanusForConditionalGeneration
from transformers.cache_utils import DynamicLayer

import janus
from janus import static_decode
from janus.forward import num_image_tokens
from janus.sampling import sample_image_tokens

logger = logging.getLogger("bench_rollout")


@dataclass
class Result:
    config: str
    method: str
    rows: int
    image_tokens: int
    seconds: float  # wall clock
    cpu_seconds: float  # process CPU time: robust to other processes on a shared CPU machine
    peak_mib: float

    @property
    def tokens_per_s(self) -> float:
        return self.rows * self.image_tokens / self.seconds

    @property
    def tokens_per_cpu_s(self) -> float:
        return self.rows * self.image_tokens / self.cpu_seconds


class PeakMemory:
    """Peak extra memory of a block: CUDA allocator peak, or the process RSS polled on a thread (CPU)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_bytes = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        self._process, self._stop = psutil.Process(), threading.Event()
        self._base = self._process.memory_info().rss
        self._max = self._base
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self._max = max(self._max, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
            return
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self._max, self._process.memory_info().rss) - self._base


def release_freed_memory_to_os() -> None:
    """Make RSS track live CPU tensors: a fixed glibc mmap threshold (M_MMAP_THRESHOLD = -3) of 64 KiB.

    By default glibc keeps freed large blocks in its heap once the threshold has adapted, so RSS growth would
    depend on which method ran first rather than on what each method holds.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None or not hasattr(ctypes.CDLL(libc_name), "mallopt"):
        logger.warning("glibc mallopt not found: CPU peak-memory figures include allocator reuse noise.")
        return
    ctypes.CDLL(libc_name).mallopt(-3, 64 * 1024)


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


def timed(fn: Callable[[], torch.Tensor], device: torch.device) -> tuple[torch.Tensor, float, float, float]:
    """(tokens, wall seconds, CPU seconds, peak extra MiB) of one run."""
    with PeakMemory(device) as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        tokens = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return tokens, seconds, cpu_seconds, memory.peak_bytes / 2**20


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
    # Rounds interleave the methods, rotating their order, so that load from other processes and allocator warm-up
    # hit them alike; each figure is the median over rounds.
    names = list(methods)
    runs = {method: [] for method in names}
    for round_index in range(args.repeats):
        for method in names[round_index % len(names) :] + names[: round_index % len(names)]:
            runs[method].append(timed(methods[method], device))
            logger.info("%s / %s: %.2f s wall, %.2f s CPU", name, method, *runs[method][-1][1:3])
    results = []
    for method, method_runs in runs.items():
        seconds, cpu_seconds, peak = (statistics.median(run[k] for run in method_runs) for k in (1, 2, 3))
        results.append(Result(name, method, args.rows, steps, seconds, cpu_seconds, peak))
    agreement = {}
    if {"compiled", "eager"} <= set(decodes):
        eager, compiled = runs["janus eager"][0][0], runs["janus compiled"][0][0]
        agreement["same tokens"] = float((eager.tokens == compiled.tokens).float().mean())
        agreement["max |logp diff|"] = float((eager.logps - compiled.logps).abs().max())
    return results, diagnostics, agreement


def print_table(results: list[Result]) -> None:
    header = (
        f"{'config':<7} {'method':<22} {'rows':>4} {'img tok':>7} {'wall s':>7} {'tok/s':>7} "
        f"{'CPU s':>7} {'tok/CPU s':>9} {'peak MiB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.config:<7} {r.method:<22} {r.rows:>4} {r.image_tokens:>7} {r.seconds:>7.2f} {r.tokens_per_s:>7.1f} "
            f"{r.cpu_seconds:>7.2f} {r.tokens_per_cpu_s:>9.1f} {r.peak_mib:>8.1f}"
        )


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,medium", help="Comma list of: tiny, medium.")
    parser.add_argument("--rows", type=int, default=4, help="Images sampled together (N; 2N rows with CFG).")
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu":
        release_freed_memory_to_os()
    results, reports = [], []
    with tempfile.TemporaryDirectory() as tmp:
        model, processor = janus.load_pretrained(janus.build_tiny_checkpoint(tmp), device=args.device)
        for name in args.configs.split(","):
            if name == "tiny":
                config_results, diagnostics, agreement = bench_model("tiny", model, processor, args)
            elif name == "medium":
                # The tiny checkpoint's processor supplies prompts; the ids fit the medium vocab (102400).
                medium = medium_model(args.medium_grid, args.seed).to(args.device)
                params = sum(p.numel() for p in medium.parameters())
                logger.info("medium config: %.0f M parameters, %d image tokens", params / 1e6, args.medium_grid**2)
                config_results, diagnostics, agreement = bench_model("medium", medium, processor, args)
            else:
                raise ValueError(f"--configs entry {name!r} is unknown; use tiny and/or medium.")
            results += config_results
            reports.append((name, diagnostics, agreement))
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}")
    print_table(results)
    print()
    for report in reports:
        print_diagnostics(*report)


if __name__ == "__main__":
    main()
