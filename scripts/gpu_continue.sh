#!/usr/bin/env bash
# The shipped model's next stage at GPU batch sizes (issue #5), in one device call that fits a 10-minute command:
#   1. the shipped model (the repository root) mines one hard negative per pair of its mixture (runs/mined-gpu)
#   2. configs/small-v10-gpu.yaml continues it: 1,024 pairs a step, passages of up to 512 tokens, bf16
#   3. its last checkpoint (or `final`) and its first one, if they differ (a config with keep_checkpoints keeps
#      several), are each averaged with the shipped model, and each average is scored by `medeir eval` (every task,
#      inputs cut at 256 tokens) and on STS-B dev
#   4. the average with the higher sum of the three retrieval nDCG@10 and STS-B dev Spearman comes back as an fp16
#      model folder, xz-compressed, in parts under 16 MB ($OUT/soup-gpu.tar.xz.part-*); the last checkpoint's average
#      is packed first, so a call cut short still returns a model
# Results and logs: $OUT/results.tar.gz. The tests that need CUDA run last, if time is left.
#
# Usage: OUT=<folder> scripts/gpu_continue.sh DATA_DIR [WHEEL_DIR]
#   DATA_DIR: a copy of the staged data with the config's pair files, train/stsb_dev.jsonl and eval/; WHEEL_DIR as in
#   scripts/gpu_common.sh. SMOKE=1 runs a few tiny steps (on CPU, with a small DATA_DIR); BUDGET_S (default 550) is
#   the seconds after which no further scoring starts.
set -u
DATA=$(realpath "$1")
WHEELS=${2:-}
OUT=${OUT:?set OUT to the folder for results}
source "$(dirname "$0")/gpu_common.sh"
DEADLINE=$((SECONDS + ${BUDGET_S:-550}))
budget() {  # budget SECONDS: SECONDS, capped by the seconds left before the deadline
    local left=$((DEADLINE - SECONDS))
    echo $(($1 < left ? $1 : (left > 0 ? left : 0)))
}
CONFIG=configs/small-v10-gpu.yaml
RUN=runs/v10-gpu

if [ "${SMOKE:-0}" = 1 ]; then
    TRAIN=(--set contrastive.steps=4 --set stop_at_step=3 --set save_every=2 --set contrastive.batch_size=8
           --set contrastive.chunk_size=4 --set contrastive.graded_pairs_per_batch=4
           --set contrastive.passage_max_length=64 --set 'mixed_precision="no"')
    MINE=(--depth 5)
    CONFIG=/tmp/smoke-config.yaml  # without MedQuAD (DATA_DIR keeps it whole for the clustering sample), short passages
    python3 -c "import json, sys; from medeir.train.settings import load_settings, settings_dict
c = settings_dict(load_settings(sys.argv[1])); c['contrastive']['passage_max_length'] = 64
del c['contrastive']['pair_files']['train/medquad_pairs.jsonl.gz']; open(sys.argv[2], 'w').write(json.dumps(c))" \
        configs/small-v10-gpu.yaml "$CONFIG"
else
    TRAIN=() MINE=()
fi
save_results() {  # the results so far as $OUT/results.tar.gz (the folder itself has too many files to come back)
    tar -czf "$OUT/results.tar.gz" -C "$OUT" results
}
rm -rf runs/mined-gpu "$RUN" runs/gpu-soup-*  # a rerun on the same machine starts afresh
nvidia-smi -L 2>/dev/null
python3 -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__)"

step mine 150 python3 -m medeir mine-negatives --config "$CONFIG" --model . --data "$DATA" --output runs/mined-gpu \
    "${MINE[@]}" || TRAIN+=(--set "data_dir=$DATA")  # without mined negatives rather than not at all
cp runs/mined-gpu/mining.json "$RESULTS/" 2>/dev/null
if ! step train 270 python3 -m medeir train contrastive --config "$CONFIG" "${TRAIN[@]}" &&
    [ -z "$(last_model "$RUN")" ] && [ "$(budget 200)" -ge 60 ]; then  # nothing saved: again, at the sizes
    # of the from-scratch GPU run (whose contrastive stage ran without a gradient cache)
    step train-fallback "$(budget 200)" python3 -m medeir train contrastive --config "$CONFIG" "${TRAIN[@]}" \
        --set contrastive.batch_size=256 --set contrastive.chunk_size=0 --set contrastive.passage_max_length=256 \
        --set time_limit_minutes=2
fi
cp "$RUN/loss_log.jsonl" "$RESULTS/" 2>/dev/null
save_results

MODELS=("$(last_model "$RUN")")  # the last step first: it is packed before anything else can run out of time
FIRST=$(checkpoints "$RUN" | head -1)
[ "$FIRST" != "$(checkpoints "$RUN" | tail -1)" ] && MODELS+=("$FIRST")  # an earlier checkpoint that was kept
SOUPS=()
for model in "${MODELS[@]}"; do
    [ -n "$model" ] && [ "$(budget 60)" -ge 20 ] || continue
    name=gpu-soup-$(basename "$model")
    step "average-$name" "$(budget 60)" python3 scripts/average_weights.py . "$model" --output "runs/$name" &&
        SOUPS+=("$name")
done
if [ ${#SOUPS[@]} -gt 0 ] && pack_model "runs/${SOUPS[0]}" soup-gpu >"$RESULTS/pack.log" 2>&1; then
    echo "${SOUPS[0]}" >"$RESULTS/packed.txt"
fi

for name in "${SOUPS[@]}"; do
    [ "$(budget 60)" -ge 60 ] || break
    step "eval-$name" "$(budget 120)" python3 -m medeir eval --model "runs/$name" --baseline none --max-length 256 \
        --name "$name" --output "$RESULTS/eval-$name"
    [ "$(budget 15)" -ge 15 ] || break
    step "dev-$name" "$(budget 40)" python3 -m medeir eval --model "runs/$name" --baseline none --max-length 256 --task sts \
        --sts-file "$DATA/train/stsb_dev.jsonl" --name "$name" --output "$RESULTS/dev-$name"
    save_results
done

BEST=$(python3 - "$RESULTS" "${SOUPS[@]}" <<'PY'
"""Print each average's scores, then the name of the one with the highest retrieval nDCG@10 sum + STS-B dev."""
import json
import sys
from pathlib import Path

results, names = Path(sys.argv[1]), sys.argv[2:]
totals = {}
for name in names:
    try:
        rows = json.loads((results / f"eval-{name}" / "results.json").read_text())["results"]
        dev = json.loads((results / f"dev-{name}" / "results.json").read_text())["results"][0]
    except (OSError, KeyError, IndexError, ValueError):
        print(f"{name}: incomplete scores", file=sys.stderr)
        continue
    scores = {f"{r['task']}/{r['dataset']}": next(iter(r["metrics"].values())) for r in rows}
    scores["sts/dev"] = dev["metrics"]["cos_sim_spearman"]
    totals[name] = sum(v for k, v in scores.items() if k.startswith("retrieval/")) + scores["sts/dev"]
    print(name, " ".join(f"{k}={v:.2f}" for k, v in scores.items()), file=sys.stderr)
if totals:
    print(max(totals, key=totals.get))
PY
)
echo "best: ${BEST:-none}"
if [ -n "$BEST" ] && [ "$BEST" != "$(cat "$RESULTS/packed.txt" 2>/dev/null)" ]; then
    pack_model "runs/$BEST" soup-gpu >>"$RESULTS/pack.log" 2>&1 && echo "$BEST" >"$RESULTS/packed.txt"
fi

if [ "${SMOKE:-0}" != 1 ] && [ "$(budget 60)" -ge 60 ]; then
    step pytest_gpu "$(budget 120)" python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu_backends.py
    tail -n 5 "$RESULTS/pytest_gpu.log"
fi
tail -n 3 "$RESULTS/loss_log.jsonl" 2>/dev/null
save_results && rm -r "$RESULTS"
