"""Benchmark the HPS v2.1 scorer: one batched scorer vs one scorer per image with a checkpoint reload per call.

The second mode is what `hpsv2.score()` does (it rebuilds the model and reloads the checkpoint on every
call). By default a tiny open_clip config with a random checkpoint written to a temp dir is used, so it
runs anywhere in seconds; `--model-name ViT-H-14` with no `--checkpoint` writes a random full-size one.

    python scripts/bench_rewards.py                      # tiny config, CPU
    python scripts/bench_rewards.py --model-name ViT-H-14 --device cuda --dtype bfloat16 --naive-calls 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import open_clip
import torch

from rewards.reward_generate import HPSv21Scorer

TINY_MODEL = "hps-bench-tiny"
TINY_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 224, "layers": 4, "width": 128, "head_width": 32, "patch_size": 14},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 4},
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-name", default=TINY_MODEL, help="open_clip config; default: a tiny ViT at 224 px")
    parser.add_argument("--checkpoint", type=Path, help="HPS checkpoint; default: random weights in a temp dir")
    parser.add_argument("--num-images", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=384, help="side of the input images (Janus decodes 384)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--naive-calls", type=int, help="time only this many reload-per-image calls (extrapolated)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    return parser.parse_args()


def write_random_checkpoint(model_name: str, out_dir: Path) -> Path:
    """A random state dict saved as HPS does ({"state_dict": fp16 tensors}); timing does not depend on values."""
    torch.manual_seed(0)
    model = open_clip.create_model(model_name, pretrained=None)
    path = out_dir / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": {k: v.half() for k, v in model.state_dict().items()}}, path)
    return path


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def benchmark(args: argparse.Namespace, work_dir: Path) -> None:
    dtype = DTYPES[args.dtype]
    if args.model_name == TINY_MODEL:
        (work_dir / f"{TINY_MODEL}.json").write_text(json.dumps(TINY_CONFIG))
        open_clip.add_model_config(work_dir / f"{TINY_MODEL}.json")
    checkpoint = args.checkpoint or write_random_checkpoint(args.model_name, work_dir)
    images = torch.rand(
        args.num_images, 3, args.image_size, args.image_size, generator=torch.Generator().manual_seed(0)
    )
    images = (images * 2 - 1).to(args.device)  # [N, 3, H, W] in [-1, 1], like decoded Janus images
    prompts = [f"a photo of object number {i}" for i in range(args.num_images)]

    start = time.perf_counter()
    scorer = HPSv21Scorer(checkpoint, args.device, dtype, args.model_name, batch_size=args.batch_size)
    load_s = time.perf_counter() - start
    scorer.score(images[:2], prompts[:2])  # warm-up (allocator, kernels) outside the timing
    synchronize(args.device)
    start = time.perf_counter()
    batched = scorer.score(images, prompts)
    synchronize(args.device)
    batched_s = time.perf_counter() - start
    del scorer

    naive_calls = min(args.naive_calls or args.num_images, args.num_images)
    start = time.perf_counter()
    for i in range(naive_calls):
        per_call = HPSv21Scorer(checkpoint, args.device, dtype, args.model_name, batch_size=1)
        single = per_call.score(images[i : i + 1], prompts[i : i + 1])
        synchronize(args.device)
        del per_call
    naive_s = (time.perf_counter() - start) * args.num_images / naive_calls
    assert torch.allclose(single.float(), batched[naive_calls - 1 : naive_calls].float(), atol=1e-2)

    extrapolated = "" if naive_calls == args.num_images else f" (extrapolated from {naive_calls} calls)"
    print(f"model {args.model_name}, {args.num_images} images {args.image_size}px, {args.device}, {args.dtype}")
    print(f"load once:                  {load_s:8.2f} s")
    print(
        f"batched (batch {args.batch_size:3d}):        {batched_s:8.2f} s  ({batched_s / args.num_images * 1e3:.1f} ms/image)"
    )
    print(f"reload + score per image:   {naive_s:8.2f} s{extrapolated}")
    print(
        f"speed-up batched vs reload: {naive_s / batched_s:8.1f}x  (incl. the one load: {naive_s / (batched_s + load_s):.1f}x)"
    )


def main() -> None:
    args = parse_args()
    # The random checkpoint is ~2 GB for ViT-H-14: remove it with the temp dir.
    with tempfile.TemporaryDirectory(prefix="bench_rewards_") as work_dir:
        benchmark(args, Path(work_dir))


if __name__ == "__main__":
    main()
