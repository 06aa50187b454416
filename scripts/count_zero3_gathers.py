"""Count ZeRO-3 all-gathers in the log-prob forward + backward: head once per call vs once per chunk (CPU, gloo).

Run under torchrun with 2 processes (one rank alone gathers nothing):
    torchrun --nproc_per_node 2 scripts/count_zero3_gathers.py --chunks 13
Builds the tiny checkpoint, wraps DeepSpeed ZeRO-3 (fp32, SGD) around it, then for each head mode runs
`answer_token_logps` and `image_token_logps` (CFG) with grad and a backward, counting the calls to
torch.distributed's all-gather functions and the bytes they return. `--chunks` sets the log-prob chunk size so the
completion splits into that many chunks (a Janus-Pro-1B micro-batch has ~13 text-head chunks at the default).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import Counter

import torch
import torch.distributed as dist

GATHERS = ("all_gather_into_tensor", "all_gather", "_all_gather_base")
counts: Counter = Counter()


def _counting(name: str, original):
    def wrapped(*args, **kwargs):
        output = args[0] if args else kwargs.get("output_tensor", kwargs.get("tensor_list"))
        counts["calls"] += 1
        tensors = output if isinstance(output, list) else [output]
        counts["bytes"] += sum(t.numel() * t.element_size() for t in tensors)
        return original(*args, **kwargs)

    wrapped.__name__ = name
    return wrapped


# Wrap before DeepSpeed is imported: its comm backend keeps references to these functions.
for _name in GATHERS:
    if hasattr(dist, _name):
        setattr(dist, _name, _counting(_name, getattr(dist, _name)))


def run_mode(engine, model, processor, single_head_call: bool, chunks: int) -> Counter:
    from janus import logprobs

    rank = dist.get_rank()
    questions = [f"What is in picture {rank}?", "How many birds are there?"]
    images = torch.rand(2, 3, processor.image_size, processor.image_size, generator=torch.Generator().manual_seed(0))
    answer_batch = processor.encode_understanding(questions, images * 2 - 1)
    vocab = model.config.text_config.vocab_size
    completion = torch.randint(0, vocab, (2, 4 * chunks), generator=torch.Generator().manual_seed(1))
    gen_batch = processor.encode_generation(["a red apple", "two cats on a sofa"])
    image_tokens = torch.randint(0, model.config.vq_config.num_embeddings, (2, processor.num_image_tokens))
    original = logprobs._is_zero3_partitioned
    logprobs._is_zero3_partitioned = lambda head: single_head_call
    # The text head then splits 4 * chunks completion tokens into `chunks` chunks of 4.
    logprobs.LOGIT_CHUNK_ELEMENTS = 2 * model.config.text_config.vocab_size * 4
    try:
        counts.clear()
        answer = logprobs.answer_token_logps(model, answer_batch, completion, torch.ones_like(completion))
        image = logprobs.image_token_logps(model, gen_batch, image_tokens, cfg_weight=5.0)
        engine.backward(answer.sum() + image.sum())
        engine.step()
        return Counter(counts)
    finally:
        logprobs._is_zero3_partitioned = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=13, help="Text-head chunks of the completion.")
    args = parser.parse_args()
    import deepspeed

    import janus

    torch.set_num_threads(1)
    deepspeed.init_distributed(dist_backend="gloo")
    with tempfile.TemporaryDirectory() as tmp:
        path = janus.build_tiny_checkpoint(tmp) if dist.get_rank() == 0 else None
        holder = [path]
        dist.broadcast_object_list(holder)
        model, processor = janus.load_pretrained(holder[0], dtype=torch.float32)
        dist.barrier()
    model.train()
    config = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0},
        "bf16": {"enabled": False},
    }
    config["zero_allow_untested_optimizer"] = True  # plain SGD: no JIT-built DeepSpeed optimizer op on CPU
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
    results = {}
    for single in (False, True, False, True):  # the second round is the steady state (first calls warm up)
        results[single] = run_mode(engine, engine.module, processor, single, args.chunks)
    if dist.get_rank() == 0:
        for single, label in ((False, "head per chunk"), (True, "head once per call")):
            found = results[single]
            print(f"{label:<20} all-gathers {found['calls']:>4}  gathered {found['bytes'] / 2**20:8.2f} MiB per rank")
    dist.barrier()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
