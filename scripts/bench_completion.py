"""Benchmark completion throughput: loopback OpenAI-compatible server with fixed latency, concurrent vs sequential.

    python scripts/bench_completion.py [--samples 40 --latency 0.2 --in-flight 1 8 32]

Each sample costs 2 calls (draft + verify), so the sequential floor is 2 x samples x latency. Every run
uses a fresh cache folder, so all calls reach the server; a final rerun shows the cost of a cached rebuild.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from PIL import Image

from data_tools.completion import Completer, OpenAIBackend
from data_tools.loopback_openai import FakeOpenAI
from data_tools.multiple_choice import format_mcq
from data_tools.schema import GenerationSample, UnderstandingSample


def make_samples(folder: Path, n: int) -> list[UnderstandingSample | GenerationSample]:
    samples = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.new("RGB", (32, 32), (i % 256, 0, 0)).save(path)
        if i % 2:
            samples.append(GenerationSample(f"g{i}", str(path), f"a photo of {i} red circles"))
        else:
            samples.append(UnderstandingSample(f"u{i}", str(path), format_mcq(f"Q{i}?", ["a", "b", "c", "d"]), "A"))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server sleeps per request")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(latency=args.latency) as server:
        samples = make_samples(Path(tmp), args.samples)
        print(f"# {args.samples} samples x 2 calls, {args.latency * 1000:.0f} ms server latency per call")
        for in_flight in args.in_flight:
            cache = Path(tmp) / f"cache{in_flight}"
            completer = Completer(OpenAIBackend("o3", server.base_url, "x"), cache, max_in_flight=in_flight)
            start = time.perf_counter()
            completer.complete_all(samples)
            seconds = time.perf_counter() - start
            calls = completer.usage.api_calls
            print(f"in_flight={in_flight:3d}: {calls} calls in {seconds:6.2f} s = {calls / seconds:6.1f} calls/s")
        start = time.perf_counter()
        rerun = Completer(OpenAIBackend("o3", server.base_url, "x"), cache, max_in_flight=args.in_flight[-1])
        rerun.complete_all(samples)
        print(f"cached rerun: {rerun.usage.api_calls} calls, {rerun.usage.cache_hits} cache hits in "
              f"{time.perf_counter() - start:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
