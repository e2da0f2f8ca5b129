#!/usr/bin/env bash
# Several constant-learning-rate runs of tools/train_demo.py side by side (one GPU or CPU
# cores), each for a fixed time, then the mean of each run's kept weights:
#
#     tools/parallel_runs.sh OUT SECONDS INIT.pth "NAME: train_demo flags" ...
#     tools/parallel_runs.sh runs 420 demo/weights/hmmn_small_demo.pth "a: --seed 21 --lr 1e-4" "b: --seed 22 --jaccard 1"
#
# Each run: OUT/NAME (checkpoint, log.jsonl, weights/iteration_*.pth every KEEP_EVERY iterations),
# OUT/NAME.log (its output), OUT/NAME/final.pth(.json: the command and settings). Then
# OUT/NAME_mean.pth(.json): tools/average_weights.py of its kept weights from iteration
# AVERAGE_FROM on. Environment: DEVICE (cuda), PYTHON (python3), KEEP_EVERY (50),
# AVERAGE_FROM (200), WORKERS (1 process generating clips ahead per run on a GPU; 0 on a CPU).
set -u
OUT=${1:?usage: tools/parallel_runs.sh OUT SECONDS INIT.pth \"NAME: flags\" ...}
SECONDS_LIMIT=${2:?give the seconds each run trains}
INIT=${3:?give the weights the runs start from}
shift 3
[ $# -ge 1 ] || { echo "parallel_runs.sh: give at least one \"NAME: flags\" run" >&2; exit 2; }
[ -f "$INIT" ] || { echo "parallel_runs.sh: $INIT: no such file" >&2; exit 2; }
PY=${PYTHON:-python3} DEVICE=${DEVICE:-cuda}
KEEP_EVERY=${KEEP_EVERY:-50} AVERAGE_FROM=${AVERAGE_FROM:-200}
if [ "$DEVICE" = cpu ]; then WORKERS=${WORKERS:-0}; else WORKERS=${WORKERS:-1}; fi
HERE=$(dirname "$0")
for spec in "$@"; do
    name=${spec%%:*}
    [ -n "$name" ] && [ "$name" != "$spec" ] || { echo "parallel_runs.sh: \"$spec\": write NAME: flags" >&2; exit 2; }
done
mkdir -p "$OUT"
names=() pids=()
for spec in "$@"; do
    name=${spec%%:*} flags=${spec#*:}
    names+=("$name")
    # shellcheck disable=SC2086  # the flags are words on purpose
    "$PY" "$HERE/train_demo.py" --out "$OUT/$name" --init "$INIT" --device "$DEVICE" --workers "$WORKERS" \
        --threads 1 --schedule constant --warmup 50 --iterations 1000000 --val-every 1000000 --save-every 500 \
        --keep-every "$KEEP_EVERY" --time-limit "$SECONDS_LIMIT" --export "$OUT/$name/final.pth" $flags \
        > "$OUT/$name.log" 2>&1 &
    pids+=($!)
done
echo "$(date +%T) ${#names[@]} runs started for $SECONDS_LIMIT s each on $DEVICE: ${names[*]}"
failed=0
for i in "${!names[@]}"; do
    name=${names[$i]}
    if ! wait "${pids[$i]}"; then
        echo "run $name FAILED: $(tail -3 "$OUT/$name.log")"; failed=1; continue
    fi
    kept=()
    for path in "$OUT/$name"/weights/iteration_*.pth; do
        [ -f "$path" ] || continue  # no kept weights: the glob stays unexpanded
        number=${path##*iteration_}; number=$((10#${number%.pth}))
        [ "$number" -ge "$AVERAGE_FROM" ] && kept+=("$path")
    done
    done_its=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["iterations_done"])' "$OUT/$name/final.json")
    if [ ${#kept[@]} -lt 2 ]; then
        echo "run $name: $done_its iterations, fewer than 2 kept weights from iteration $AVERAGE_FROM: no mean"; failed=1; continue
    fi
    "$PY" "$HERE/average_weights.py" "${kept[@]}" --record "$OUT/$name/final.json" \
        --export "$OUT/${name}_mean.pth" 2>&1 | tail -1
    echo "run $name: $done_its iterations, mean of ${#kept[@]} kept weights"
done
exit $failed
