#!/usr/bin/env bash
# Issue 4's GPU measurements in one go, from the repository root: at most 8 minutes of runs.
#
#   bash bench/gpu_check.sh                  # on a CUDA machine: JSON files and a log in $OUT
#                                            # (the device tool's folder) or else bench_results/
#   bash bench/gpu_check.sh --device cpu --clips 12 --feature_size 64 --train_batches 2
#                                            # a smoke test of this script on any machine
#
# Arguments go to every benchmark run. Each run has its own time limit, so that one that hangs
# cannot take the others' time. Without Java or pycocoevalcap the scoring stage is skipped and
# the table has no whole-epoch row: add the scoring time measured elsewhere, and say so.
set -u
out=${OUT:-bench_results}
python=${PYTHON:-python3}
log=$out/gpu_check.log
export PYTHONUNBUFFERED=1
mkdir -p "$out"

run() {   # run LIMIT_SECONDS BENCHMARK_ARGS...
    local limit=$1
    shift
    echo "== python -m bench $*" | tee -a "$log"
    timeout "$limit" "$python" -m bench --out "$out" "$@" 2>&1 | tee -a "$log"
    local status=${PIPESTATUS[0]}
    if [ "$status" = 124 ]; then
        echo "== stopped: over its ${limit} s" | tee -a "$log"
    else
        echo "== exit $status" | tee -a "$log"
    fi
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
    "$python" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
    java -version 2>&1 | head -n 1
} | tee -a "$log"

# 1. Every stage against the baseline, in the default settings (float32, 100 videos a batch).
run 300 "$@"
# 2. This code alone, the test set decoded in one batch, in each precision worth measuring.
fast_only=(--no_baseline --stages train,val_loss,beam_test --decode_modes full --eval_batch_size 670)
run 60 "${fast_only[@]}" "$@"
run 60 "${fast_only[@]}" --autocast bf16 "$@"
if "$python" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    run 60 "${fast_only[@]}" --tf32 "$@"
fi
