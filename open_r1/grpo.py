"""PairGRPO training entry point (PairUni): pairs -> a unified model -> rewards -> PairGRPOTrainer -> a checkpoint.

The model family is `--backbone` (`backbones.BACKBONES`), inferred from the checkpoint's config.json by default.

UniRL's GRPO is the same entry with self rows and `--config configs/recipes/unirl_janus_pro_1b.yaml` (README,
"UniRL mode").

    torchrun --nproc_per_node=8 open_r1/grpo.py --config configs/recipes/janus_pro_1b.yaml \
        --deepspeed configs/zero3.json --model_name_or_path <Janus-Pro-1B folder> --pair_data_path <pairs.jsonl> \
        --output_dir checkpoints/run

The same command runs on a CPU-only host (the demo): `open_r1.runtime` selects the gloo backend, tells accelerate
that DeepSpeed is in use, and trains in fp32.
"""

import logging
import sys

import datasets
import transformers
from transformers import set_seed
from trl import ModelConfig, TrlParser

from backbones import backbone_class, infer_backbone
from backbones.interface import trainable_prefixes
from janus.checkpoint import verify_checkpoint_files
from open_r1.configs import PairGRPOConfig, PairScriptArguments
from open_r1.dataset import check_rows_for_method, load_pair_dataset
from open_r1.logs import filter_known_warnings
from open_r1.run_dir import exit_with_launcher, prepare_output_dir, resolve_resume, resumed_run_is_finished
from open_r1.runtime import full_weights_on_every_rank, model_dtype, prepare_launch
from open_r1.trainer import PairGRPOTrainer
from open_r1.trainer.lora import build_lora_config
from rewards import build_reward_funcs
from rewards.answer_judge import LLMAnswerJudge

logger = logging.getLogger(__name__)


def setup_logging(training_args: PairGRPOConfig) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    # The project's own start-up lines (data size, the optimizer-step summary) on the main process by default.
    project_level = logging.INFO if training_args.should_log and training_args.log_level == "passive" else level
    for name in ("open_r1", "backbones", "janus", "lumina_dimoo", "showo", "rewards", "data_tools"):
        logging.getLogger(name).setLevel(project_level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def resume_checkpoint(training_args: PairGRPOConfig) -> str | None:
    """`--resume_from_checkpoint <dir>`, or `true`/`last` for the newest complete checkpoint in output_dir."""
    return resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)


def answer_judge(training_args: PairGRPOConfig) -> LLMAnswerJudge | None:
    """The optional LLM grader of free-form gold answers (UniRL's "same / not same"), cached on disk."""
    if not training_args.answer_judge_model:
        return None
    judge = LLMAnswerJudge(
        training_args.answer_judge_model,
        training_args.answer_judge_cache_dir,
        base_url=training_args.answer_judge_base_url,
    )
    judge.check_model()  # a misspelt model name fails here, not at the first free-form row mid-training
    return judge


def main(script_args: PairScriptArguments, training_args: PairGRPOConfig, model_args: ModelConfig) -> None:
    set_seed(training_args.seed)
    setup_logging(training_args)
    logger.info("Script %s\nModel %s\nTraining %s", script_args, model_args, training_args)
    backbone_cls = backbone_class(training_args.backbone or infer_backbone(model_args.model_name_or_path))
    trainable_prefixes(backbone_cls, training_args.trainable_modules)  # unknown groups fail before anything loads
    resume = resume_checkpoint(training_args)
    prepare_output_dir(training_args.output_dir, resume is not None, script_args.overwrite_output_dir)
    if resume is not None:
        # Every rank checks the files it will read: a truncated shard fails here, naming the file, on all ranks.
        verify_checkpoint_files(resume)
    if resumed_run_is_finished(resume, training_args.output_dir, training_args.max_steps):
        return

    dataset = load_pair_dataset(
        script_args.pair_data_path, script_args.image_root, script_args.skip_invalid, script_args.pair_types
    )
    if script_args.max_train_pairs is not None:
        dataset = dataset.select(range(min(script_args.max_train_pairs, len(dataset))))
    check_rows_for_method(training_args.method, dataset, script_args.pair_data_path)
    logger.info("Training on %d pairs from %s", len(dataset), script_args.pair_data_path)

    # Reward models are built here, frozen and outside any DeepSpeed zero.Init, once per rank.
    with full_weights_on_every_rank(training_args):
        reward_funcs = build_reward_funcs(
            training_args.reward_funcs,
            training_args.reward_weights,
            hps_checkpoint=training_args.hps_checkpoint,
            device=training_args.reward_device or training_args.device,
            answer_judge=answer_judge(training_args),
            hps_precision=training_args.hps_precision,
        )
        backbone, model = backbone_cls.load(
            model_args.model_name_or_path, dtype=model_dtype(model_args.dtype, training_args)
        )

    # `--use_peft`: LoRA adapters on the language model only (default targets in open_r1/trainer/lora.py).
    trainer = PairGRPOTrainer(
        model=model,
        backbone=backbone,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        peft_config=build_lora_config(model_args),
    )
    trainer.train(resume_from_checkpoint=resume)

    trainer.save_model(training_args.output_dir)  # all ranks: ZeRO-3 gathers the weights collectively
    trainer.create_model_card(dataset_name=script_args.pair_data_path)  # final rewards, not the last checkpoint's
    logger.info("Saved the trained model to %s (loads with %s.load)", training_args.output_dir, backbone_cls.__name__)


if __name__ == "__main__":
    filter_known_warnings()
    exit_with_launcher()
    argv = prepare_launch(sys.argv[1:])
    parser = TrlParser((PairScriptArguments, PairGRPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config(argv)
    main(script_args, training_args, model_args)
