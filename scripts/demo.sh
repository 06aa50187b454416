#!/usr/bin/env bash
# The CPU demo (README "main job"): the toy world of coloured shapes -> a toy Janus-Pro warm-started on it (built
# once, cached) -> PairGRPO with the real accuracy reward and the toy GenEval image reward in 2 processes under
# DeepSpeed ZeRO-3 (gloo, fp32) -> demo_output/ with a checkpoint, metrics, image grids and a reward plot in which
# both tasks' rewards rise. A few minutes on 2 CPU cores; no network. DEMO ONLY: a toy model in a toy world.
#
#   make demo                      # or: PATH=.venv/bin:$PATH bash scripts/demo.sh   (from any folder)
#   DEMO_OUT=/tmp/demo DEMO_STEPS=10 bash scripts/demo.sh
#   DEMO_SEED=1 bash scripts/demo.sh    # another training seed (the toy checkpoint and the data stay the same)
#   bash scripts/demo.sh --check-only   # only check that DEMO_OUT may be (re)used, then exit
#   make demo BACKBONE=lumina_dimoo     # or DEMO_BACKBONE=lumina_dimoo: the same on a toy Lumina-DiMOO (masked
#                                       # diffusion; slower: see docs/lumina_dimoo.md)
#
# DEMO_OUT is cleared only when an earlier demo created it (it holds the marker file below); any other non-empty
# folder is refused, so pointing DEMO_OUT at your own files never deletes them.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${DEMO_OUT:-$REPO/demo_output}
STEPS=${DEMO_STEPS:-150}
# The toy model of each backbone: its builder, its recipe, its cache folder under .cache/ (read by demo_lib.sh).
case "${DEMO_BACKBONE:-janus}" in
    janus) TOY_NAME="toy Janus-Pro" TOY_BUILDER=scripts/make_toy_janus.py RECIPE=configs/recipes/toy_cpu.yaml
        TOY_CACHE=toy-janus LOADER=janus.load_pretrained ;;
    lumina_dimoo) TOY_NAME="toy Lumina-DiMOO" TOY_BUILDER=scripts/make_toy_lumina.py
        RECIPE=configs/recipes/lumina_dimoo_toy_cpu.yaml TOY_CACHE=toy-lumina LOADER=lumina_dimoo.checkpoint.load_pretrained
        DEMO_TIMEOUT=${DEMO_TIMEOUT:-5400} ;;
    *) echo "[demo] DEMO_BACKBONE=$DEMO_BACKBONE is not supported; use janus or lumina_dimoo." >&2; exit 2 ;;
esac

# shellcheck source=scripts/demo_lib.sh
source "$REPO/scripts/demo_lib.sh"

demo_check_out_dir || exit 2
if [ "${1:-}" = "--check-only" ]; then
    echo "[demo] ok: repo $REPO, output $OUT"
    exit 0
fi

demo_prepare
start=$(date +%s)

echo "[demo] 1/4 toy world: scenes, questions, prompts and pairs (demo completion backend) -> $OUT/data"
"$PYTHON" data_tools/make_demo_data.py --out "$OUT/data" --pairs --size 32 > "$OUT/data.log" 2>&1 \
    || { tail -n 20 "$OUT/data.log"; exit 1; }

echo "[demo] 2/4 $TOY_NAME warm-started on the world (built once, cached) -> $TOY_DIR"
"$PYTHON" "$TOY_BUILDER" --out_dir "$TOY_DIR" --reuse 2> "$OUT/toy_build.log" \
    || { tail -n 20 "$OUT/toy_build.log"; exit 1; }

echo "[demo] 3/4 PairGRPO, $STEPS steps, $NPROC processes, DeepSpeed ZeRO-3 on CPU -> $OUT/run (log: $OUT/train.log)"
timeout "$TIMEOUT" torchrun --nproc_per_node "$NPROC" --master_port "${MASTER_PORT:-29533}" open_r1/grpo.py \
    --config "$RECIPE" \
    --deepspeed configs/zero3.json \
    --model_name_or_path "$TOY_DIR" \
    --pair_data_path "$OUT/data/pairs/pairs.jsonl" \
    --output_dir "$OUT/run" \
    --max_steps "$STEPS" \
    --seed "$SEED" \
    > "$OUT/train.log" 2>&1 || { tail -n 30 "$OUT/train.log"; exit 1; }

echo "[demo] 4/4 rewards over the run"
"$PYTHON" scripts/demo_summary.py "$OUT/run/metrics.jsonl"

echo
echo "[demo] done in $(( $(date +%s) - start )) s. Outputs:"
echo "  checkpoint ($LOADER): $OUT/run"
echo "  reward curves:                      $OUT/run/reward_curves.png"
echo "  sample image grids:                 $OUT/run/samples/"
echo "  metrics:                            $OUT/run/metrics.jsonl"
echo "  training log:                       $OUT/train.log"
