#!/usr/bin/env bash
# The UniRL CPU demo (README "UniRL mode"): toy prompts with a question each and NO images -> the toy Janus-Pro
# (scripts/make_toy_janus.py, built once, cached) draws an image per rollout, answers the question about its own
# drawing -> UniRL GRPO (accuracy on the own image; unirl_image judged by a greedy answer) in 2 processes under
# DeepSpeed ZeRO-3 (gloo, fp32) -> demo_unirl_output/ with a checkpoint, metrics, image grids and the reward summary.
# A few minutes on 2 CPU cores; no network. DEMO ONLY: a toy model in a toy world.
#
#   make demo-unirl               # or: PATH=.venv/bin:$PATH bash scripts/demo_unirl.sh   (from any folder)
#   DEMO_OUT=/tmp/demo_unirl DEMO_STEPS=20 bash scripts/demo_unirl.sh
#   DEMO_SEED=1 bash scripts/demo_unirl.sh   # another training seed (same toy checkpoint and rows)
#
# DEMO_OUT is cleared only when a demo created it (scripts/demo.sh's output guard, same marker file).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${DEMO_OUT:-$REPO/demo_unirl_output}
STEPS=${DEMO_STEPS:-150}

# shellcheck source=scripts/demo_lib.sh
source "$REPO/scripts/demo_lib.sh"
demo_check_out_dir || exit 2

demo_prepare
start=$(date +%s)

echo "[demo-unirl] 1/4 toy prompts with a question each, no images -> $OUT/rows.jsonl"
"$PYTHON" scripts/make_toy_unirl_rows.py --out "$OUT/rows.jsonl" --num 256 --seed 0

echo "[demo-unirl] 2/4 toy Janus-Pro warm-started on the world (built once, cached) -> $TOY_DIR"
"$PYTHON" scripts/make_toy_janus.py --out_dir "$TOY_DIR" --reuse 2> "$OUT/toy_build.log" \
    || { tail -n 20 "$OUT/toy_build.log"; exit 1; }

echo "[demo-unirl] 3/4 UniRL GRPO, $STEPS steps, $NPROC processes, DeepSpeed ZeRO-3 on CPU -> $OUT/run"
timeout "$TIMEOUT" torchrun --nproc_per_node "$NPROC" --master_port "${MASTER_PORT:-29534}" open_r1/grpo.py \
    --config configs/recipes/unirl_toy_cpu.yaml \
    --deepspeed configs/zero3.json \
    --model_name_or_path "$TOY_DIR" \
    --pair_data_path "$OUT/rows.jsonl" \
    --output_dir "$OUT/run" \
    --max_steps "$STEPS" \
    --seed "$SEED" \
    > "$OUT/train.log" 2>&1 || { tail -n 30 "$OUT/train.log"; exit 1; }

echo "[demo-unirl] 4/4 rewards over the run (understand = accuracy on the own image, generate = unirl_image)"
"$PYTHON" scripts/demo_summary.py "$OUT/run/metrics.jsonl"

echo
echo "[demo-unirl] done in $(( $(date +%s) - start )) s. Outputs:"
echo "  checkpoint (janus.load_pretrained): $OUT/run"
echo "  reward curves:                      $OUT/run/reward_curves.png"
echo "  sample image grids:                 $OUT/run/samples/"
echo "  metrics:                            $OUT/run/metrics.jsonl"
echo "  training log:                       $OUT/train.log"
