#!/bin/bash
# LFW View 1 recipe: one training per head on the peopleDevTrain identities with >= 4 images, every
# periodic checkpoint verified on pairsDevTest.txt, then one comparison table and plot:
#   bash scripts/run_lfw_view1_recipe.sh [OUTPUT_DIR] [HEADS...]
# OUTPUT_DIR defaults to output/lfw_view1 (must not hold a run of the same head yet); HEADS default to
# linear normface asoftmax cosface arcface adaface. Config: configs/lfw_view1_<head>.yaml (each starts from
# configs/lfw_view1.yaml, the settings all heads share). Environment: PYTHON
# (interpreter), LFW_DIR (default ../shared/data/lfw from the project root), RECIPE_ARGS (extra --key=value
# overrides of train.py keys for every training, e.g. "--max_steps=4 --save_interval=2" for a smoke run), EVAL_ARGS
# (the same for eval.py keys; each entry point takes only its own keys: python train.py --help, python eval.py --help).
# Writes OUTPUT_DIR/<head>/ (log_rank0.txt, checkpoints/, checkpoints/eval_result.json), OUTPUT_DIR/results.md,
# OUTPUT_DIR/validation_curves.png and prints the total wall time.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
HEADS_ALL="linear normface asoftmax cosface arcface adaface"
usage() { sed -n '2,12p' "$0" >&2; exit 2; }
case "${1:-}" in -h|--help|-*) usage ;; esac
OUTPUT_DIR=${1:-$ROOT_DIR/output/lfw_view1}
[ $# -gt 0 ] && shift
HEADS=${*:-$HEADS_ALL}
for head in $HEADS; do
    case " $HEADS_ALL " in *" $head "*) ;; *) echo "unknown head '$head' (choose from: $HEADS_ALL)" >&2; usage ;; esac
done
PY=${PYTHON:-python}
LFW=${LFW_DIR:-$ROOT_DIR/../shared/data/lfw}
for f in "$LFW/peopleDevTrain.txt" "$LFW/pairsDevTest.txt" "$LFW/lfw_landmark_150.txt"; do
    [ -f "$f" ] || { echo "missing LFW file: $f" >&2; exit 1; }
done
mkdir -p "$OUTPUT_DIR"
OUTPUT_DIR=$(cd "$OUTPUT_DIR" && pwd)
# shellcheck disable=SC2206
TRAIN_EXTRA=(${RECIPE_ARGS:-})
# shellcheck disable=SC2206
EVAL_EXTRA=(${EVAL_ARGS:-})
DEV_TEST="{pairs: '$LFW/pairsDevTest.txt', root: '$LFW/images_150', landmarks: '$LFW/lfw_landmark_150.txt'}"
START=$(date +%s)

"$PY" "$ROOT_DIR/tools/make_list.py" --root "$LFW/images_150" --people "$LFW/peopleDevTrain.txt" --min_images 4 \
    --landmarks "$LFW/lfw_landmark_150.txt" --output "$OUTPUT_DIR/train_list.txt"
RUNS=()
for head in $HEADS; do
    run="$OUTPUT_DIR/$head"
    if [ -e "$run/checkpoints" ]; then
        echo "$run already holds a run; choose another OUTPUT_DIR or remove it" >&2
        exit 1
    fi
    config="$ROOT_DIR/configs/lfw_view1_$head.yaml"
    echo "=== $head: training ($(date +%T))"
    (cd "$ROOT_DIR" && "$PY" train.py --config_path "$config" --output_dir="$run" \
        --train_list="$OUTPUT_DIR/train_list.txt" --train_root="$LFW/images_150" "${TRAIN_EXTRA[@]}")
    echo "=== $head: verifying every checkpoint on pairsDevTest ($(date +%T))"
    (cd "$ROOT_DIR" && "$PY" eval.py --config_path "$config" --ckpt_file="$run/checkpoints" \
        --val_targets="[$DEV_TEST]" "${EVAL_EXTRA[@]}")
    RUNS+=("$run")
done
"$PY" "$ROOT_DIR/tools/compare_runs.py" "${RUNS[@]}" --table "$OUTPUT_DIR/results.md" \
    --plot "$OUTPUT_DIR/validation_curves.png"
echo "total wall time: $(( $(date +%s) - START )) s"
