#!/usr/bin/env bash
# Everything this project measures on a lent GPU, in one call that fits a 10-minute device command:
#   1. benchmarks/gpu_check.py: fast attention paths' bf16 numerics, attention op / whole model vs the dense ALiBi
#      bias, encode throughput vs BertModel-SDPA (issue #8)
#   2. the from-scratch ablation (issue #5): MLM pretraining (configs/small-scratch-mlm.yaml), then contrastive
#      training on pairs without a teacher (configs/small-scratch-contrastive.yaml); the second model comes back as
#      fp16 weights in xz parts under 16 MB
#   3. benchmarks/mlm_throughput.py: training tokens/s of the 6 x 384 and 12 x 768 encoders (GPU-hour estimate)
#   4. `medeir eval` of the MLM-only encoder (retrieval + STS), so its row needs no weights back
#   5. tests/test_gpu_backends.py
# Each step has its own time limit and the next one runs whether it passed or not; logs and results go to $OUT.
#
# Usage: scripts/gpu_session.sh DATA_DIR [WHEEL_DIR]
#   DATA_DIR: a copy of the staged data (text/, train/, extra/, extra2/, eval/); WHEEL_DIR: wheels to install first
#   (the eval extras the GPU image lacks: pytrec-eval-terrier, bm25s, PyStemmer). SMOKE=1 runs tiny sizes on CPU;
#   SKIP_CHECK=1 leaves out gpu_check.
set -u
DATA=$(realpath "$1")
WHEELS=${2:-}
OUT=${OUT:?set OUT to the folder for results}
source "$(dirname "$0")/gpu_common.sh"

if [ "${SMOKE:-0}" = 1 ]; then
    BENCH=(--cpu-smoke)
    TINY=(--set "model.config={hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64}")
    MLM=("${TINY[@]}" --set "mlm.curriculum=[[32, 3], [64, 2]]" --set mlm.tokens_per_batch=256 --set 'mixed_precision="no"')
    PAIRS=(--set contrastive.steps=3 --set contrastive.batch_size=4 --set 'mixed_precision="no"')
    EVAL=(--data "$DATA/eval/scifact" --task sts)
else
    BENCH=() MLM=() PAIRS=() EVAL=()
fi
nvidia-smi -L 2>/dev/null
python3 -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__)"

[ "${SKIP_CHECK:-0}" = 1 ] || step gpu_check 140 python3 benchmarks/gpu_check.py "${BENCH[@]}"

step mlm 140 python3 -m medeir train mlm --config configs/small-scratch-mlm.yaml --set data_dir="$DATA" "${MLM[@]}"
INIT=$(last_model runs/scratch-mlm)
INIT=${INIT:-missing-mlm-output}  # never empty: an empty --model would evaluate the shipped model instead
step contrastive 110 python3 -m medeir train contrastive --config configs/small-scratch-contrastive.yaml \
    --set data_dir="$DATA" --set model.init="$INIT" "${PAIRS[@]}"
MODEL=$(last_model runs/scratch-contrastive)
[ -n "$MODEL" ] && pack_model "$MODEL" scratch-contrastive  # fp16, xz, in parts under 16 MB
cp runs/scratch-mlm/loss_log.jsonl "$RESULTS/mlm_loss_log.jsonl" 2>/dev/null
cp runs/scratch-contrastive/loss_log.jsonl "$RESULTS/contrastive_loss_log.jsonl" 2>/dev/null

step mlm_throughput 50 python3 benchmarks/mlm_throughput.py --repeats 3 --output "$RESULTS/mlm_throughput.json" \
    "${BENCH[@]}"
step eval_mlm 70 python3 -m medeir eval --model "$INIT" --baseline none --max-length 256 --task retrieval --task sts \
    --name scratch-mlm --output "$RESULTS/eval-scratch-mlm" "${EVAL[@]}"
[ "${SMOKE:-0}" = 1 ] || step pytest_gpu 70 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu_backends.py

[ -f "$OUT/gpu_check.json" ] && mv "$OUT/gpu_check.json" "$RESULTS/"
for name in gpu_check mlm_throughput pytest_gpu; do  # the tables, last: the reply carries the end of the output
    [ -f "$RESULTS/$name.log" ] && { echo "--- $name"; tail -n 40 "$RESULTS/$name.log"; }
done
tail -n 2 "$RESULTS"/*loss_log.jsonl 2>/dev/null
tar -czf "$OUT/results.tar.gz" -C "$OUT" results && rm -r "$RESULTS"
