"""PairGRPO training entry point (PairUni): pairs -> Janus-Pro -> rewards -> PairGRPOTrainer -> a loadable checkpoint.

    torchrun --nproc_per_node=8 open_r1/grpo.py --config configs/recipes/janus_pro_1b.yaml \
        --deepspeed configs/zero3.json --model_name_or_path <Janus-Pro-1B folder> --pair_data_path <pairs.jsonl> \
        --output_dir checkpoints/run

The same command runs on a CPU-only host (the demo): without CUDA it selects the gloo backend, tells accelerate that
DeepSpeed is in use, and trains in fp32 (see `prepare_cpu_distributed`).
"""

import logging
import os
import sys
from contextlib import contextmanager

import datasets
import torch
import transformers
import yaml
from transformers import set_seed
from transformers.integrations.deepspeed import (
    is_deepspeed_zero3_enabled,
    set_hf_deepspeed_config,
    unset_hf_deepspeed_config,
)
from trl import ModelConfig, TrlParser

import janus
from open_r1.configs import PairGRPOConfig, PairScriptArguments
from open_r1.dataset import load_pair_dataset
from open_r1.logs import filter_known_warnings
from open_r1.run_dir import exit_with_launcher, prepare_output_dir, resolve_resume
from open_r1.trainer import PairGRPOTrainer
from open_r1.trainer.lora import build_lora_config
from rewards import build_reward_funcs

logger = logging.getLogger(__name__)


def uses_deepspeed(argv: list[str]) -> bool:
    """Whether the command line (or its `--config` YAML) asks for DeepSpeed."""
    if any(arg == "--deepspeed" or arg.startswith("--deepspeed=") for arg in argv):
        return True
    if "--config" in argv and argv.index("--config") + 1 < len(argv):
        with open(argv[argv.index("--config") + 1]) as f:
            return bool((yaml.safe_load(f) or {}).get("deepspeed"))
    return False


def prepare_cpu_distributed(argv: list[str]) -> None:
    """Make `torchrun` + DeepSpeed work on a host with no GPU (environment.md, "DeepSpeed ZeRO-3 on CPU").

    Without this accelerate picks no backend and every rank believes it is alone. It must run before the
    training config is built, because building it initialises the distributed state.
    """
    if torch.cuda.is_available() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    from accelerate import PartialState

    if uses_deepspeed(argv):
        os.environ.setdefault("ACCELERATE_USE_DEEPSPEED", "true")
        PartialState(backend="gloo")
    else:  # plain DDP over gloo
        PartialState(cpu=True, backend="gloo")


@contextmanager
def full_weights_on_every_rank(training_args: PairGRPOConfig):
    """Build models outside `deepspeed.zero.Init`: DeepSpeed partitions the policy later, when the Trainer wraps it.

    With a ZeRO-3 config registered, transformers partitions parameters at construction; the Janus loader then copies
    full tensors into shape-[0] parameters, and reward models would be partitioned too (pitfalls.md).
    """
    if not is_deepspeed_zero3_enabled():
        yield
        return
    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        set_hf_deepspeed_config(training_args.hf_deepspeed_config)


def setup_logging(training_args: PairGRPOConfig) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    for name in ("open_r1", "janus", "rewards", "data_tools"):
        logging.getLogger(name).setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def model_dtype(model_args: ModelConfig, training_args: PairGRPOConfig) -> torch.dtype | None:
    """Weights dtype at load: `--dtype` (default "auto" = as stored) only under DeepSpeed mixed precision.

    DeepSpeed keeps fp32 master weights for the optimizer; without it (CPU, single GPU, DDP) bf16 weights would
    swallow 1e-6 updates, so the model loads in fp32 and `--bf16` runs the forward under autocast.
    """
    if not training_args.deepspeed or not (training_args.bf16 or training_args.fp16):
        return torch.float32
    if model_args.dtype in (None, "auto"):
        return None
    return getattr(torch, model_args.dtype)


def resume_checkpoint(training_args: PairGRPOConfig) -> str | None:
    """`--resume_from_checkpoint <dir>`, or `true`/`last` for the newest complete checkpoint in output_dir."""
    return resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)


def main(script_args: PairScriptArguments, training_args: PairGRPOConfig, model_args: ModelConfig) -> None:
    set_seed(training_args.seed)
    setup_logging(training_args)
    logger.info("Script %s\nModel %s\nTraining %s", script_args, model_args, training_args)
    resume = resume_checkpoint(training_args)
    prepare_output_dir(training_args.output_dir, resume is not None, script_args.overwrite_output_dir)

    dataset = load_pair_dataset(
        script_args.pair_data_path, script_args.image_root, script_args.skip_invalid, script_args.pair_types
    )
    if script_args.max_train_pairs is not None:
        dataset = dataset.select(range(min(script_args.max_train_pairs, len(dataset))))
    logger.info("Training on %d pairs from %s", len(dataset), script_args.pair_data_path)

    # Reward models are built here, frozen and outside any DeepSpeed zero.Init, once per rank (pitfalls.md).
    with full_weights_on_every_rank(training_args):
        reward_funcs = build_reward_funcs(
            training_args.reward_funcs,
            training_args.reward_weights,
            hps_checkpoint=training_args.hps_checkpoint,
            device=training_args.reward_device or training_args.device,
        )
        model, processor = janus.load_pretrained(
            model_args.model_name_or_path, dtype=model_dtype(model_args, training_args)
        )

    # `--use_peft`: LoRA adapters on the language model only (default targets in open_r1/trainer/lora.py).
    trainer = PairGRPOTrainer(
        model=model,
        processor=processor,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        peft_config=build_lora_config(model_args),
    )
    trainer.train(resume_from_checkpoint=resume)

    trainer.save_model(training_args.output_dir)  # all ranks: ZeRO-3 gathers the weights collectively
    logger.info("Saved the trained model to %s (loads with janus.load_pretrained)", training_args.output_dir)


if __name__ == "__main__":
    filter_known_warnings()
    exit_with_launcher()
    prepare_cpu_distributed(sys.argv[1:])
    parser = TrlParser((PairScriptArguments, PairGRPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args)
