#!/usr/bin/env bash
# PairGRPO on Janus-Pro-1B with the paper's settings (configs/recipes/janus_pro_1b.yaml), 8 GPUs, DeepSpeed ZeRO-3.
# per_device_train_batch_size counts pairs; the recipe's global_pairs_per_step 16 makes every optimizer step 16 pairs x
# 8 rollouts per task on any NUM_GPUS that divides 16 (the log's first lines say "optimizer step = ...").
#
#   MODEL_PATH=/models/Janus-Pro-1B DATA_PATH=data/pairs.jsonl bash train.sh
#   RECIPE=configs/recipes/janus_pro_7b.yaml MODEL_PATH=/models/Janus-Pro-7B bash train.sh --max_steps 600
#
# Environment overrides: MODEL_PATH (local Janus-Pro folder, either format), DATA_PATH (PairUG jsonl), OUTPUT_DIR,
# NUM_GPUS, RECIPE, DEEPSPEED_CONFIG, MASTER_PORT. Extra arguments go to open_r1/grpo.py and override the recipe
# (e.g. --hps_checkpoint /path/HPS_v2.1_compressed.pt, --resume_from_checkpoint true, --report_to wandb).
set -euo pipefail

SCRIPT_DIR=$(dirname "${BASH_SOURCE[0]}")
export PYTHONPATH="$SCRIPT_DIR${PYTHONPATH:+:$PYTHONPATH}"  # the repo's packages, with or without `pip install -e .`
MODEL_PATH=${MODEL_PATH:-checkpoints/Janus-Pro-1B}
DATA_PATH=${DATA_PATH:-data/pairs.jsonl}
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/pairuni-janus-pro-1b}
NUM_GPUS=${NUM_GPUS:-8}
RECIPE=${RECIPE:-$SCRIPT_DIR/configs/recipes/janus_pro_1b.yaml}
DEEPSPEED_CONFIG=${DEEPSPEED_CONFIG:-$SCRIPT_DIR/configs/zero3.json}

torchrun --nproc_per_node "$NUM_GPUS" --master_port "${MASTER_PORT:-29500}" "$SCRIPT_DIR/open_r1/grpo.py" \
    --config "$RECIPE" \
    --deepspeed "$DEEPSPEED_CONFIG" \
    --model_name_or_path "$MODEL_PATH" \
    --pair_data_path "$DATA_PATH" \
    --output_dir "$OUTPUT_DIR" \
    "$@"
