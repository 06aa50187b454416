"""Measurement shared by the rollout benchmarks (`bench_rollout.py`, `bench_masked_diffusion.py`).

Wall and CPU seconds and peak extra memory of one call, medians over interleaved rounds, and a batched sampler call
against the batch-1 loop over its rows under per-row seeds (the share of equal tokens). Nothing model-specific.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil
import torch

logger = logging.getLogger("bench_measure")


@dataclass
class Result:
    config: str
    method: str
    rows: int
    tokens: int  # generated tokens per row
    seconds: float  # wall clock
    cpu_seconds: float  # process CPU time: robust to other processes on a shared CPU machine
    peak_mib: float

    @property
    def tokens_per_s(self) -> float:
        return self.rows * self.tokens / self.seconds

    @property
    def tokens_per_cpu_s(self) -> float:
        return self.rows * self.tokens / self.cpu_seconds


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


Run = tuple[Any, float, float, float]  # (output, wall seconds, CPU seconds, peak extra MiB)


def timed(fn: Callable[[], Any], device: torch.device) -> Run:
    """(output, wall seconds, CPU seconds, peak extra MiB) of one call."""
    with PeakMemory(device) as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return out, seconds, cpu_seconds, memory.peak_bytes / 2**20


def interleaved_runs(
    methods: dict[str, Callable[[], Any]], rounds: int, device: torch.device, label: str
) -> dict[str, list[Run]]:
    """`rounds` timed runs of every method. Rounds interleave the methods, rotating their order, so that load from
    other processes and allocator warm-up hit them alike."""
    names = list(methods)
    runs: dict[str, list[Run]] = {method: [] for method in names}
    for round_index in range(rounds):
        for method in names[round_index % len(names) :] + names[: round_index % len(names)]:
            runs[method].append(timed(methods[method], device))
            logger.info("%s / %s: %.2f s wall, %.2f s CPU", label, method, *runs[method][-1][1:3])
    return runs


def median_results(config: str, runs: dict[str, list[Run]], rows: int, tokens: int) -> list[Result]:
    """One `Result` per method: the medians of its wall seconds, CPU seconds and peak memory."""
    results = []
    for method, method_runs in runs.items():
        seconds, cpu_seconds, peak = (statistics.median(run[k] for run in method_runs) for k in (1, 2, 3))
        results.append(Result(config, method, rows, tokens, seconds, cpu_seconds, peak))
    return results


# `sample(rows)` -> tokens [len(rows), N] of those rows; row i draws from its own generator seeded from i, so the
# same row gets the same seed whichever rows it is sampled with.
RowSampler = Callable[[Sequence[int]], torch.Tensor]


@dataclass
class LoopComparison:
    """A batched call against the batch-1 loop over its rows: both methods' medians and the share of equal tokens."""

    batched: Result
    loop: Result
    equal_tokens: float

    @property
    def speedup(self) -> float:
        """Batch-1 loop CPU seconds / batched CPU seconds."""
        return self.loop.cpu_seconds / self.batched.cpu_seconds


def row_methods(name: str, sample: RowSampler, rows: int) -> dict[str, Callable[[], torch.Tensor]]:
    """`{"<name> batched": all rows in one call, "<name> batch-1 loop": one call per row}`, as timed methods."""
    everything = list(range(rows))
    return {
        f"{name} batched": lambda: sample(everything),
        f"{name} batch-1 loop": lambda: torch.cat([sample([row]) for row in everything]),
    }


def batched_vs_loop(
    config: str, name: str, sample: RowSampler, rows: int, rounds: int, device: torch.device
) -> LoopComparison:
    """Time `sample(all rows)` against `sample([r])` for each row in turn, interleaved over `rounds`; compare the
    tokens of the first round (same per-row seeds, so a sampler that batches faithfully gives the same tokens)."""
    methods = row_methods(name, sample, rows)
    sample([0])  # warm-up (allocator, kernels, lazy inits)
    runs = interleaved_runs(methods, rounds, device, config)
    batched_tokens, loop_tokens = (runs[method][0][0] for method in methods)
    batched, loop = median_results(config, runs, rows, batched_tokens.shape[1])
    return LoopComparison(batched, loop, float((batched_tokens == loop_tokens).float().mean()))


def print_table(results: Sequence[Result]) -> None:
    header = (
        f"{'config':<7} {'method':<36} {'rows':>4} {'tokens':>6} {'wall s':>7} {'tok/s':>8} "
        f"{'CPU s':>7} {'tok/CPU s':>9} {'peak MiB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.config:<7} {r.method:<36} {r.rows:>4} {r.tokens:>6} {r.seconds:>7.2f} {r.tokens_per_s:>8.1f} "
            f"{r.cpu_seconds:>7.2f} {r.tokens_per_cpu_s:>9.1f} {r.peak_mib:>8.1f}"
        )


def print_comparisons(comparisons: Sequence[LoopComparison]) -> None:
    for c in comparisons:
        print(
            f"{c.batched.config:<7} {c.batched.method.removesuffix(' batched'):<36} batched vs batch-1 loop: "
            f"x{c.speedup:.2f} tokens per CPU s, equal tokens {c.equal_tokens:.4f} (same per-row seeds)"
        )
