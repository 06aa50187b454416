"""Write a real single-process DeepSpeed ZeRO-3 checkpoint of a Janus model, laid out like an HF Trainer checkpoint.

Run as a subprocess by test_export.py (DeepSpeed initialises torch.distributed, which must not leak into the
pytest process): `python zero3_checkpoint.py MODEL_DIR CHECKPOINT_DIR SHIFT`. CHECKPOINT_DIR gets the model saved
with `janus.save_pretrained` (as the trainer does) and then ZeRO-3 shards of the same model with every floating
parameter shifted by SHIFT, so a test can tell which of the two an export read.
"""

import os
import sys

import torch


def main(model_dir: str, checkpoint_dir: str, shift: float) -> None:
    import deepspeed

    import janus

    model, processor = janus.load_pretrained(model_dir, dtype=torch.float32)
    janus.save_pretrained(model, processor, checkpoint_dir)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(shift)
    deepspeed.init_distributed(dist_backend="gloo")
    config = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": 3},
        "bf16": {"enabled": False},
    }
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
    engine.save_checkpoint(checkpoint_dir, tag="global_step3")


if __name__ == "__main__":
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
