"""UniRL SFT entry point: self rows -> a unified model -> UniRLSFTTrainer -> a checkpoint its backbone loads.

    torchrun --nproc_per_node=8 open_r1/sft.py --config configs/recipes/unirl_sft_janus_pro_1b.yaml \
        --deepspeed configs/zero3.json --model_name_or_path <Janus-Pro-1B folder> --pair_data_path <rows.jsonl> \
        --output_dir checkpoints/unirl_sft

`--pair_data_path` holds self rows (data_tools/make_unirl_prompts.py, or the UniRL authors' QA format). The same
command runs on a CPU-only host, set up exactly as open_r1/grpo.py does (gloo, fp32).
"""

import logging
import sys

from transformers import set_seed
from trl import ModelConfig, TrlParser

from backbones import backbone_class, infer_backbone
from janus.checkpoint import verify_checkpoint_files
from open_r1.configs import PairScriptArguments
from open_r1.grpo import setup_logging
from open_r1.logs import filter_known_warnings
from open_r1.run_dir import exit_with_launcher, finished_step, prepare_output_dir, resolve_resume
from open_r1.runtime import full_weights_on_every_rank, model_dtype, prepare_launch
from open_r1.trainer.unirl_sft import UniRLSFTConfig, UniRLSFTTrainer, load_self_rows

logger = logging.getLogger(__name__)


def check_script_args(script_args: PairScriptArguments) -> None:
    """Refuse the grpo.py data options that have no meaning for self rows, rather than ignore them."""
    if script_args.image_root is not None:
        raise ValueError(
            f"image_root={script_args.image_root!r}: UniRL SFT rows name no image file (the model draws each image); "
            "fix: drop --image_root"
        )


def main(script_args: PairScriptArguments, training_args: UniRLSFTConfig, model_args: ModelConfig) -> None:
    set_seed(training_args.seed)
    setup_logging(training_args)
    logger.info("Script %s\nModel %s\nTraining %s", script_args, model_args, training_args)
    check_script_args(script_args)
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    prepare_output_dir(training_args.output_dir, resume is not None, script_args.overwrite_output_dir)
    if resume is not None:
        verify_checkpoint_files(resume)  # every rank, before any reads: a truncated shard fails here, named
    step = finished_step(resume, training_args.max_steps)
    if step is not None:
        logger.warning(
            "%s is at step %d, max_steps is %d: the run is finished and nothing is trained or saved. Raise "
            "--max_steps to train on.", resume, step, training_args.max_steps,
        )  # fmt: skip
        return

    dataset = load_self_rows(
        script_args.pair_data_path, script_args.max_train_pairs, script_args.skip_invalid, script_args.pair_types
    )
    logger.info("Training on %d self rows from %s", len(dataset), script_args.pair_data_path)

    with full_weights_on_every_rank(training_args):
        backbone, model = backbone_class(training_args.backbone or infer_backbone(model_args.model_name_or_path)).load(
            model_args.model_name_or_path, dtype=model_dtype(model_args.dtype, training_args)
        )

    trainer = UniRLSFTTrainer(model=model, backbone=backbone, args=training_args, train_dataset=dataset)
    trainer.train(resume_from_checkpoint=resume)

    trainer.save_model(training_args.output_dir)  # all ranks: ZeRO-3 gathers the weights collectively
    trainer.create_model_card(dataset_name=script_args.pair_data_path)
    logger.info(
        "Saved the trained model to %s (loads with %s.load)", training_args.output_dir, type(backbone).__name__
    )


if __name__ == "__main__":
    filter_known_warnings()
    exit_with_launcher()
    argv = prepare_launch(sys.argv[1:])
    parser = TrlParser((PairScriptArguments, UniRLSFTConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config(argv)
    main(script_args, training_args, model_args)
