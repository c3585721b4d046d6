#!/usr/bin/env bash
# Issue 10's GPU check in one go, from the repository root: every CUDA path of train.py, run.py
# and the benchmark, held to a budget of 570 s so that it ends, summary and all, inside one
# 10-minute device call; the last steps may be left for a second call, which the summary spells
# out. Estimated for one H200 (not yet run there), about 10 minutes of runs in all: the
# measurements about 220 s (the benchmark about 140 s, if its baseline takes what the reference
# implementation took there, 43 s an epoch and 58 s for the test set; each other run about 40 s);
# the CUDA paths about 200 s, with the small corpus's runs and the device tests in the
# background beside them; the profile about 60 s; then the other measurements, about 30 s each,
# of which the budget may leave out the last one or two.
#
#   bash bench/gpu_check.sh                  # on a CUDA machine: a log and the benchmark's JSON
#                                            # files in $OUT (the device tool's folder) or else
#                                            # bench_results/
#   bash bench/gpu_check.sh --device cpu --clips 12 --feature_size 64 --train_batches 2
#                                            # the reduced form: a smoke test of this script on
#                                            # any machine (tests/test_benchmark.py)
#   STEPS=train,resume bash bench/gpu_check.sh   # only these steps (names in the summary) and
#                                            # the steps they need (the corpora for these two)
#   STEPS=speed bash bench/gpu_check.sh      # two halves, for two shorter runs: "speed", the
#   STEPS=paths bash bench/gpu_check.sh      # measurements; "paths", the CUDA paths and tests
#   BUDGET=900 bash bench/gpu_check.sh       # another budget in seconds (0: none)
#
# Arguments go to every benchmark run; --device, --clips and --feature_size also shape the other
# steps (--clips N: corpora of N clips a split, small models, 1-2 epochs). Each step has its own
# time limit, so one that hangs costs only its own time, and one that fails does not stop the
# others; the summary at the end gives each step's exit status and time, and the script exits 1
# when any step failed or was skipped. Steps run in the order of what matters most: the goals'
# measurements, the CUDA paths with the device tests beside them, the other measurements; the
# output ends with a digest (each failed step's last lines, the profile's numbers), the goals
# table and the summary, for a reader who gets only its end. The budget: a step starts only with
# a minute (or its own limit) left beyond the 30 s kept for the goals table, and gets at most
# what is left; a step skipped, cut short by the budget or needing a skipped one is named in the
# command that the summary ends with, which runs the rest. Where Java or pycocoevalcap is
# missing, training and captioning run with --eval.metrics "" (no COCO scores, best checkpoint
# by validation loss); the step "scorer_missing" checks that without that option train.py stops
# at once and says so.
set -u
out=${OUT:-bench_results}
python=${PYTHON:-python3}
log=$out/gpu_check.log
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
summary=()
failed=0

device=auto clips="" feature_size=2048
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
        --device) device=${args[i + 1]:-auto} ;;
        --clips) clips=${args[i + 1]:-} ;;
        --feature_size) feature_size=${args[i + 1]:-2048} ;;
    esac
done
if [ "$device" = auto ]; then
    device=$("$python" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
fi

# The halves STEPS may name; together they are every step (tests/test_benchmark.py checks).
speed_steps=benchmark,fast_graphs,fast_graphs_tf32,fast_float32,fast_bf16,fast_tf32,fast_unfused_cell
speed_steps+=,profile,goals
paths_steps=corpus,corpus_small,scorer_missing,train,resume,device_to_cpu,device_again,device_graphs
paths_steps+=,same_captions,graphs_same_captions
paths_steps+=,cpu_train,cpu_to_device,cpu_checkpoint_on_device,device_train_small,device_to_cpu_resume
paths_steps+=,scst,graphs_resume,tests
asked="" named=${STEPS:-}   # the steps STEPS names, the halves spelled out
for name in ${named//,/ }; do
    case $name in
        speed) asked+=,$speed_steps ;;
        paths) asked+=,$paths_steps ;;
        *) [[ ",$speed_steps,$paths_steps," == *",$name,"* ]] || {
               echo "error: STEPS names '$name', which is not a step; the steps:" \
                    "$speed_steps,$paths_steps (or speed, paths)" >&2
               exit 2; }
           asked+=,$name ;;
    esac
done
if [ -n "$named" ] && [ -z "$asked" ]; then
    echo "error: STEPS=$named names no step" >&2
    exit 2
fi
steps_wanted=${asked#,}
# What each step needs from earlier ones: STEPS names a step, and these run too (each run of
# the script starts from nothing). The reduced form trains everything on its one corpus.
small_corpus=$([ -n "$clips" ] && echo corpus || echo corpus_small)
declare -A needs=(
    [scorer_missing]=corpus [train]=corpus [resume]=corpus
    [device_to_cpu]=train [device_again]=train [device_graphs]=train
    [same_captions]=device_to_cpu,device_again [graphs_same_captions]=device_again,device_graphs
    [cpu_train]=$small_corpus [cpu_to_device]=cpu_train [cpu_checkpoint_on_device]=cpu_train
    [device_train_small]=$small_corpus [device_to_cpu_resume]=device_train_small
    [graphs_resume]=device_to_cpu_resume [scst]=$small_corpus
)
while [ -n "$steps_wanted" ]; do
    before=$steps_wanted
    for name in ${steps_wanted//,/ }; do
        steps_wanted+=",${needs[$name]:-}"
    done
    steps_wanted=$(tr , '\n' <<< "$steps_wanted" | awk 'NF && !seen[$0]++' | paste -sd ,)
    [ "$steps_wanted" != "$before" ] || break
done
wanted() { [ -z "$steps_wanted" ] || [[ ",$steps_wanted," == *",$1,"* ]]; }

# The budget: by default the full form ends inside one 10-minute device call (600 s), summary
# included, and the reduced form has none. hold_back is kept for the last step (goals).
budget=${BUDGET:-$([ -n "$clips" ] && echo 0 || echo 570)}
hold_back=30 least=60
skipped=() reached=() failures=()
step_log=$log              # where a step's output goes; a step in the background has its own
declare -A background_pids=()   # what runs in the background: its process ids
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
mkdir -p "$work/out"       # each step's output on its own, for the digest at the end

not_run() {   # not_run NAME WHY: a step left out; the command at the end runs it
    echo "== [$1] skipped: $2" | tee -a "$step_log"
    summary+=("$(printf '%-26s skipped (%s)' "$1" "$2")")
    skipped+=("$1")
    failed=1
}

step() {   # step NAME LIMIT_SECONDS COMMAND...: run it (if wanted) with its limit, log, record
    local name=$1 limit=$2 cut="" deps=${needs[$1]:-} need
    shift 2
    wanted "$name" || return 0
    reached+=("$name")
    for need in ${deps//,/ }; do
        if [[ " ${skipped[*]} " == *" $need "* ]]; then
            not_run "$name" "needs $need"
            return 0
        fi
    done
    if [ "$budget" -gt 0 ]; then
        local left=$((budget - hold_back - SECONDS))
        if [ "$left" -lt "$least" ] && [ "$left" -lt "$limit" ]; then
            not_run "$name" "budget: $left s left"
            return 0
        fi
        [ "$left" -ge "$limit" ] || { cut=" (the budget's; its own is $limit s)" limit=$left; }
    fi
    echo "== [$name] $*" | tee -a "$step_log"
    local started=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$step_log" "$work/out/$name.txt"
    local status=${PIPESTATUS[0]} note=""
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        echo "== stopped: over its limit of ${limit} s$cut" | tee -a "$step_log"
        [ -z "$cut" ] || { skipped+=("$name"); note="  (cut by the budget)"; }
    fi
    echo "== exit $status" | tee -a "$step_log"
    summary+=("$(printf '%-26s exit %3s  %4d s%s' "$name" "$status" $((SECONDS - started)) "$note")")
    [ "$status" = 0 ] || { failed=1; failures+=("$name"); }
}

# What a step records, in these arrays; steps in the background hand theirs back through files.
records=(summary skipped reached failures)

background() {   # background NAME COMMAND...: COMMAND (steps) in the background, beside the
    # steps that follow until `collect NAME`; their output goes to the log then, in one piece.
    # Only for checks whose outcome, not time, counts: they share the GPU and the CPU cores, so
    # they get a few CPU threads each.
    local name=$1
    local -A before=()
    local -n list              # a for loop over names makes list each array in turn
    for list in "${records[@]}"; do before[${!list}]=${#list[@]}; done
    shift
    (   # what the steps add to each record, and whether one failed, to files
        step_log=$work/$name.log failed=0
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
        "$@" > /dev/null
        for list in "${records[@]}"; do
            printf '%s\n' "${list[@]:before[${!list}]}" > "$work/$name.${!list}"
        done
        echo "$failed" > "$work/$name.failed"
    ) &
    background_pids[$name]=$!
}

collect() {   # collect NAME: wait for what runs in the background; its output and outcomes join
    local name=$1 lines
    local -n list
    [ -n "${background_pids[$name]:-}" ] || return 0
    wait "${background_pids[$name]}"
    unset "background_pids[$name]"
    if [ -s "$work/$name.log" ]; then
        echo "== [$name] ran in the background beside the steps above:" | tee -a "$log"
        tee -a "$log" < "$work/$name.log"
    fi
    for list in "${records[@]}"; do
        mapfile -t lines < <(grep -s . "$work/$name.${!list}") && list+=("${lines[@]}")
    done
    if [ "$(cat "$work/$name.failed" 2> /dev/null)" != 0 ]; then
        failed=1
        [ -e "$work/$name.failed" ] ||
            summary+=("$(printf '%-26s ended without an outcome (the background shell died)' "$name")")
    fi
}

{
    echo "gpu_check $(date -u '+%Y-%m-%d %H:%M UTC'), device $device," \
         "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
    "$python" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
    java -version 2>&1 | head -n 1
    echo "steps: ${steps_wanted:-all}; budget: $([ "$budget" -gt 0 ] && echo "$budget s" || echo none)"
} | tee -a "$log"

# Wheels carried in .whl/ (bench/gpu_wheels.sh: PyAV, EfficientNet-Lite0, tensorboardX), for
# this run only: feature extraction and run.py --video then run on the device too.
wheels=(.whl/*.whl)
if [ -e "${wheels[0]}" ]; then
    if "$python" -m pip install --quiet --no-index --no-deps --no-compile --target "$work/site" \
            "${wheels[@]}" > "$work/pip.txt" 2>&1; then
        export PYTHONPATH=$work/site${PYTHONPATH:+:$PYTHONPATH}
        echo "carried wheels: ${wheels[*]#.whl/}" | tee -a "$log"
    else
        cat "$work/pip.txt" | tee -a "$log"
        echo "note: the carried wheels could not be installed (above); going on without them" \
            | tee -a "$log"
    fi
fi
if ! "$python" -c "import av" 2> /dev/null; then
    echo "note: no PyAV here: the tests of video files skip (bench/gpu_wheels.sh fetches" \
         "the wheels; carry .whl)" | tee -a "$log"
fi

# Without Java or pycocoevalcap nothing can be scored: the runs say so and go on without scores.
# The reduced form never scores (the JVM starts would cost more than the rest).
scoring=$("$python" -c "from evaluation.scorer import why_no_scoring; print(why_no_scoring())")
if [ -n "$scoring" ] || [ -n "$clips" ]; then
    no_scores=(--eval.metrics "" --train.select_metric loss)
    run_no_scores=(--eval.metrics "")
    [ -n "$scoring" ] && echo "note: no COCO scoring here ($scoring missing)" | tee -a "$log"
else
    no_scores=() run_no_scores=()
fi

# The corpora: MSVD-shaped, random ResNet-152-sized features, prepared by splits.MSVD.
# Full form: all 1970 clips on $device, and 40 clips a split for training on the CPU.
# Reduced form: one corpus of --clips clips a split, small models.
root=$work/msvd small=$work/msvd_small
if [ -n "$clips" ]; then
    corpus=(--videos "$clips" --feature_size "$feature_size")
    small=$root epochs=1
    model=(--model.hidden_size 32 --model.embedding_size 16 --model.attention_size 16
           --eval.beam_size 2 --eval.max_len 8 --loader.batch_size 100)
    # ops this small gain nothing from threads, and on a busy CPU waiting threads stall them
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
    corpus=(--feature_size "$feature_size")
    epochs=2 model=()
fi
runs=$work/runs
train_options=(--preset MSVD --train.run_root "$runs" "${model[@]}" "${no_scores[@]}")
train=("$python" train.py "${train_options[@]}")
caption=("$python" run.py "${run_no_scores[@]}")

# First what the goals are judged on, on an idle GPU. The benchmark (issue 4): every stage
# against the baseline, in the default settings, decoding at full length (the goals' decode;
# the baseline's own stopping would cost another long run); then this code alone with training and
# decoding as CUDA graphs (train.cuda_graphs, eval.cuda_graphs: a first epoch and a first
# decoding pass capture, then the timed ones replay; beam search of the test split in batches
# of 100), in float32 and with TF32. A run stopped at its limit keeps the stages it measured.
bench() {   # bench NAME LIMIT BENCHMARK_ARGS...
    local name=$1 limit=$2
    shift 2
    step "$name" "$limit" "$python" -m bench --out "$out" "$@"
}
bench benchmark 240 --decode_modes full "$@"
if [ "$device" != cpu ]; then
    # the goals' decode only (all 31 steps; a graph never stops early anyway), for time
    graphs=(--no_baseline --stages train,beam_test --decode_modes full --cuda_graphs --decode_graphs)
    bench fast_graphs 100 "${graphs[@]}" "$@"
    bench fast_graphs_tf32 100 "${graphs[@]}" --tf32 "$@"
fi

# Beside the CUDA paths below, in the background (their outcomes count, not their times): the
# device tests, and the runs on the small corpus, each with a few CPU threads.
# The tests that run on the device (those that read SALSTM_TEST_DEVICE through tests/devices.py
# or need CUDA), with $device as their device; the rest of the suite is device-free and runs in
# CI. The reduced form runs only the device tests.
device_tests() {
    if [ -n "$clips" ]; then
        step tests 120 env SALSTM_TEST_DEVICE="$device" "$python" -m pytest -q -rs \
            -p no:cacheprovider tests/test_devices.py
    else
        local uses_device='^from tests.devices import|torch.cuda.is_available\(\)' device_tests
        mapfile -t device_tests < <(grep -lE "$uses_device" tests/test_*.py)
        step tests 240 env SALSTM_TEST_DEVICE="$device" "$python" -m pytest -q -rs \
            -p no:cacheprovider "${device_tests[@]}"
    fi
}
background tests device_tests

# The CUDA paths, on the corpora.
step corpus 120 "$python" -m bench.msvd_corpus --out "$root" "${corpus[@]}"
# bash -c "$resumes" _ FILE EPOCH TRAIN_COMMAND...: the command's output also to FILE; status 0
# when it ended well and said it resumed after that epoch.
resumes='set -o pipefail; file=$1 epoch=$2; shift 2; "$@" | tee "$file" &&
    grep -q "^resuming .* after epoch $epoch" "$file"'
# On the small corpus (the reduced form's one corpus): a CPU run resumes on $device and
# captions there; a $device run resumes on the CPU, then on $device as CUDA graphs; SCST.
small_corpus_runs() {
    if [ -z "$clips" ]; then
        step corpus_small 60 "$python" -m bench.msvd_corpus --out "$small" --videos 40
    fi
    step cpu_train 200 "${train[@]}" --corpus.data_root "$small" --train.device cpu \
        --train.epochs 1 --train.run_name on_cpu
    step cpu_to_device 200 bash -c "$resumes" _ "$work/cpu_to_device.txt" 1 "${train[@]}" \
        --corpus.data_root "$small" --train.device "$device" --train.epochs 2 --train.run_name on_cpu
    step cpu_checkpoint_on_device 90 "${caption[@]}" --checkpoint "$runs/on_cpu/best.pt" \
        --train.device "$device" --out "$work/captions_cpu_checkpoint"
    step device_train_small 120 "${train[@]}" --corpus.data_root "$small" --train.device "$device" \
        --train.epochs 1 --train.run_name small_on_device
    step device_to_cpu_resume 200 bash -c "$resumes" _ "$work/device_to_cpu.txt" 1 "${train[@]}" \
        --corpus.data_root "$small" --train.device cpu --train.epochs 2 \
        --train.run_name small_on_device
    if [ "$device" != cpu ]; then
        # train.cuda_graphs: that run's third epoch as CUDA graphs, resumed from the CPU's last.pt
        step graphs_resume 120 bash -c "$resumes" _ "$work/graphs.txt" 2 "${train[@]}" \
            --corpus.data_root "$small" --train.device "$device" --train.epochs 3 \
            --train.run_name small_on_device --train.cuda_graphs true
    fi
    # SCST on $device without Java: 1 cross-entropy epoch, then 1 self-critical epoch, the best
    # checkpoint chosen by the validation CIDEr-D computed in-process.
    step scst 90 "${train[@]}" --corpus.data_root "$small" --train.device "$device" \
        --train.epochs 1 --train.scst_epochs 1 --eval.metrics "" --train.select_metric CIDEr-D \
        --train.run_name scst
}
background small_corpus small_corpus_runs

# On the full corpus, in the foreground.
if [ -n "$scoring" ]; then   # what a user without Java sees: one clear message, no work done
    step scorer_missing 60 bash -c 'said=$("$@" 2>&1); status=$?; echo "$said"
        [ "$status" = 2 ] && grep -q -- "--eval.metrics \"\"" <<< "$said"' _ \
        "$python" train.py --preset MSVD --corpus.data_root "$root" --train.run_root "$runs"
fi
# train.py on $device: every epoch's training, validation loss and beam search, then the test set.
step train 180 "${train[@]}" --corpus.data_root "$root" --train.device "$device" \
    --train.epochs "$epochs" --train.run_name on_device
# Across devices: the $device checkpoint captions on the CPU (val split: 100 videos) and on
# $device, eagerly and as CUDA graphs (eval.cuda_graphs), in batches that leave a smaller last
# one (two graphs, replays of the first), with the captions compared.
step device_to_cpu 150 "${caption[@]}" --checkpoint "$runs/on_device/best.pt" --split val \
    --train.device cpu --out "$work/captions_cpu"
val_batches=(--loader.eval_batch_size "$([ -n "$clips" ] && echo 5 || echo 32)")
step device_again 90 "${caption[@]}" --checkpoint "$runs/on_device/best.pt" --split val \
    --train.device "$device" "${val_batches[@]}" --out "$work/captions_device"
step device_graphs 90 "${caption[@]}" --checkpoint "$runs/on_device/best.pt" --split val \
    --train.device "$device" "${val_batches[@]}" --eval.cuda_graphs true --out "$work/captions_graphs"
# compare WHAT LEAST_SHARE DIR_A DIR_B: the share of the same val captions, at least LEAST_SHARE
compare='import json, sys
what, least, *dirs = sys.argv[1:]
a, b = (json.load(open(f"{d}/val_predictions.json")) for d in dirs)
same = sum(x["caption"] == y["caption"] for x, y in zip(a, b))
print(f"{same}/{len(a)} val captions the same {what}")
sys.exit(0 if len(a) == len(b) > 0 and same >= float(least) * len(a) else 1)'
step same_captions 30 "$python" -c "$compare" \
    "on the CPU and on the device (float rounding may swap near-tied beams)" 0.9 \
    "$work/captions_cpu" "$work/captions_device"
step graphs_same_captions 30 "$python" -c "$compare" \
    "eagerly and as CUDA graphs on the device (the same kernels)" 0.98 \
    "$work/captions_device" "$work/captions_graphs"
# Resume after SIGKILL on $device: killed once epoch 1's last.pt is there, in epoch 2.
step resume 120 "$python" -m bench.resume_check "$runs/killed" -- "${train_options[@]}" \
    --corpus.data_root "$root" --train.device "$device" --train.epochs 2 --train.run_name killed
collect small_corpus
collect tests

# Where the time goes, the account of what stands in the way of a goal missed: kernels, GPU busy
# share and the costliest operators of training batches (eager, and as CUDA graphs on a GPU)
# and of beam-search steps.
if [ -n "$clips" ]; then
    step profile 90 "$python" -m bench.profile --device "$device" --clips "$clips" \
        --feature_size "$feature_size" --batches 1 --top 5
else
    step profile 120 "$python" -m bench.profile --device "$device" --batches 3 --cuda_graphs
fi
# This code alone, the test set decoded in one batch: in float32, and without nn.LSTMCell's
# fused kernel (models/decoder.py uses it on CUDA: does it pay?), under bf16, with TF32.
fast_only=(--no_baseline --stages train,val_loss,beam_test --decode_modes full --eval_batch_size 670)
bench fast_float32 60 "${fast_only[@]}" "$@"
if [ "$device" != cpu ]; then
    bench fast_unfused_cell 60 "${fast_only[@]}" --unfused_cell "$@"
fi
bench fast_bf16 60 "${fast_only[@]}" --autocast bf16 "$@"
if [ "$device" != cpu ]; then
    bench fast_tf32 60 "${fast_only[@]}" --tf32 "$@"
fi

# The digest, for a reader who gets only the end of this output: the profile's numbers (its
# tables are above) and the last lines of each step that failed (its traceback), in that order,
# at most 5000 bytes (the first failures kept); then the goals table and the summary.
{
    if [ -s "$work/out/profile.txt" ]; then
        echo "== [profile] its numbers:"
        grep -E '^(## |- )' "$work/out/profile.txt"
    fi
    for name in "${failures[@]}"; do
        echo "== [$name] failed; its last lines:"
        tail -n 12 "$work/out/$name.txt" | cut -c1-200
    done
} > "$work/digest.txt"
if [ -s "$work/digest.txt" ]; then
    echo "== digest: where the time goes, and what failed" | tee -a "$log"
    head -c 5000 "$work/digest.txt" | tee -a "$log"
fi

# Last, issue 10's goals beside every run's numbers, from the benchmark's JSON files (printed only:
# on a GPU the 7 JSON files and the log are the 8 files the device tool hands back).
hold_back=0 least=0   # the time kept for this last step, which takes a few seconds
step goals 30 "$python" -m bench.goals "$out"

{
    echo "== summary (device $device)"
    [ ${#summary[@]} -eq 0 ] || printf '%s\n' "${summary[@]}"
    if [ -n "$asked" ]; then    # named steps that this form has not (CPU, reduced form)
        for name in ${asked//,/ }; do
            [[ " ${reached[*]} " == *" $name "* ]] ||
                printf '%-26s not in this form (device %s%s)\n' "$name" "$device" \
                    "$([ -n "$clips" ] && echo ", reduced")"
        done
    fi
    rest=() measured=""
    for name in "${skipped[@]}"; do
        [ "$name" = goals ] || rest+=("$name")
        [[ ",$speed_steps," != *",$name,"* ]] || measured=1
    done
    [ -z "$measured" ] || rest+=(goals)   # the table of what the rest measures
    if [ ${#rest[@]} -gt 0 ]; then
        echo "== the rest: STEPS=$(IFS=,; echo "${rest[*]}") bash bench/gpu_check.sh$(printf ' %q' "$@")"
    fi
} | tee -a "$log"
[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"     # KEEP_WORK=1 keeps the corpora, runs and captions
exit $failed
