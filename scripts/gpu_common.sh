# Sourced by the device scripts (scripts/gpu_*.sh): needs DATA (a copy of the staged data) and OUT (the folder whose
# files come back); WHEELS, if set, is a folder of wheels the device image lacks (pytrec-eval-terrier, bm25s,
# PyStemmer for `medeir eval`). Sets up the environment and defines `step`, `pack_model`, `checkpoints` and
# `last_model`.
export PYTHONUNBUFFERED=1 MEDEIR_DATA_DIR="$DATA" HF_HUB_OFFLINE=1
if [ -n "${WHEELS:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
RESULTS="$OUT/results"
mkdir -p "$RESULTS"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $RESULTS/NAME.log, report the exit status
    local name=$1 seconds=$2 began=$SECONDS status
    shift 2
    timeout "$seconds" "$@" >"$RESULTS/$name.log" 2>&1
    status=$?
    echo "[$name] exit $status after $((SECONDS - began)) s"
    return $status
}

pack_model() {  # pack_model FOLDER NAME: the model as an fp16 model folder (medeir.hub), xz-compressed, in parts
    # under 16 MB at $OUT/NAME.tar.xz.part-*; unpack with `cat NAME.tar.xz.part-* | tar -xJf -`. The parts of an
    # earlier pack under NAME are replaced only once the new ones are complete.
    (
        set -eo pipefail
        rm -rf "/tmp/$2" "/tmp/$2-parts"
        mkdir "/tmp/$2-parts"
        python3 -c "import sys; from medeir.hub import write_model_folder; from medeir.loading import load_tokenizer
from modeling_medeir import MedEIRModel
write_model_folder(MedEIRModel.from_pretrained(sys.argv[1]), load_tokenizer(sys.argv[1]), sys.argv[2])" "$1" "/tmp/$2"
        XZ_OPT="-1 -T0" tar -cJf - -C /tmp "$2" | split -b 15M - "/tmp/$2-parts/$2.tar.xz.part-"
        rm -f "$OUT/$2".tar.xz.part-*
        mv "/tmp/$2-parts"/* "$OUT/"
    )
}

checkpoints() {  # checkpoints RUN_DIR: its complete checkpoint folders, oldest first
    ls -d "$1"/checkpoint-[0-9]* 2>/dev/null | grep -v "\.tmp$" | sort -V
}

last_model() {  # last_model RUN_DIR: RUN_DIR/final, else its newest complete checkpoint, else nothing
    if [ -d "$1/final" ]; then echo "$1/final"; return; fi
    checkpoints "$1" | tail -1
}
