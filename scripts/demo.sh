#!/usr/bin/env bash
# The CPU demo (README "main job"): synthetic demo pairs -> tiny Janus-Pro checkpoint -> PairGRPO for a few steps in
# 2 processes under DeepSpeed ZeRO-3 (gloo, fp32) -> demo_output/ with a checkpoint, metrics, image grids and a
# reward plot. A few minutes on 2 CPU cores; no network. DEMO ONLY: tiny random model and a toy colour reward.
#
#   make demo                      # or: PATH=.venv/bin:$PATH bash scripts/demo.sh
#   DEMO_OUT=/tmp/demo DEMO_STEPS=4 bash scripts/demo.sh
set -euo pipefail

OUT=${DEMO_OUT:-demo_output}
STEPS=${DEMO_STEPS:-6}
NPROC=${DEMO_NPROC:-2}
TIMEOUT=${DEMO_TIMEOUT:-900}
PYTHON=${PYTHON:-python}

# The repo's packages import even without the editable install (scripts run from their own folders).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
# DeepSpeed JIT-builds small ops here; an interrupted build leaves a lock file that hangs every later run.
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/.torch_extensions}
mkdir -p "$TORCH_EXTENSIONS_DIR"
find "$TORCH_EXTENSIONS_DIR" -name lock -type f -delete

rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)

echo "[demo] 1/3 synthetic demo data and pairs (demo completion backend) -> $OUT/data"
"$PYTHON" data_tools/make_demo_data.py --out "$OUT/data" --pairs

echo "[demo] 2/3 tiny random Janus-Pro checkpoint -> $OUT/tiny-janus"
"$PYTHON" scripts/make_tiny_janus.py --out_dir "$OUT/tiny-janus"

echo "[demo] 3/3 PairGRPO, $STEPS steps, $NPROC processes, DeepSpeed ZeRO-3 on CPU -> $OUT/run"
timeout "$TIMEOUT" torchrun --nproc_per_node "$NPROC" --master_port "${MASTER_PORT:-29533}" open_r1/grpo.py \
    --config configs/recipes/tiny_cpu.yaml \
    --deepspeed configs/zero3.json \
    --model_name_or_path "$OUT/tiny-janus" \
    --pair_data_path "$OUT/data/pairs/pairs.jsonl" \
    --output_dir "$OUT/run" \
    --max_steps "$STEPS" \
    2>&1 | tee "$OUT/train.log"

echo
echo "[demo] done in $(( $(date +%s) - start )) s. Outputs:"
echo "  checkpoint (janus.load_pretrained): $OUT/run"
echo "  intermediate checkpoints (resume):  $(ls -d "$OUT"/run/checkpoint-* 2>/dev/null | tr '\n' ' ')"
echo "  metrics:                            $OUT/run/metrics.jsonl"
echo "  reward curves:                      $OUT/run/reward_curves.png"
echo "  sample image grids:                 $OUT/run/samples/"
echo "  training log:                       $OUT/train.log"
