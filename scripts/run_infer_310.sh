#!/usr/bin/env bash
# LFW verification through the deployment chain, from any directory:
#   preprocess.py (aligned float32 .bin inputs + pairs.json)
#   -> inference: ascend310_infer/face_infer (C++, MindSpore Lite; built with build.sh when absent)
#                 or, with BACKEND python, tools/mindir_infer.py (MindSpore's own MINDIR runner)
#   -> postprocess.py (the 10-fold metrics and LFWACC= line of eval.py)
#
# The C++ harness runs MindSpore Lite MINDIR models. With the Lite 2.0.0 wheel (tools/fetch_lite.sh) that means a
# model converted from ONNX by tools/to_lite.py: Lite 2.0 cannot read the MINDIR MindSpore 2.10 exports (MindIR
# version 3). A Lite package of the same version as MindSpore may read export.py's MINDIR directly (not tested).
# The python backend runs export.py's MINDIR (not a Lite model) with MindSpore on DEVICE_TYPE.
#
# Environment (all optional):
#   PYTHON            interpreter with the project's requirements (default: python3)
#   INFER_WORK_DIR    folder for inputs, embeddings and logs (default: ./infer_310 in the current directory)
#   INFER_BACKEND     cpp or python when the 6th argument is not given (default: cpp)
#   PAIRS IMAGES LANDMARKS   pairs file, image folder, landmark file (default: found in DATASET_PATH, see below)
#   BATCH_SIZE        batch for a dynamic-batch model (default 64); THREAD_NUM CPU threads (default 2)
#   FUSION            orig, concat or sum (default concat, as eval.py)
#   CONFIG_PATH       config for preprocess.py's image_size when the model has no sidecar JSON
#   FACE_INFER        the C++ executable (default: ascend310_infer/build/face_infer, built when absent)
#   MINDSPORE_LITE_HOME   MindSpore Lite, to build face_infer (e.g. "$(tools/fetch_lite.sh | tail -n 1)")
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
Usage: bash scripts/run_infer_310.sh [MINDIR_PATH] [DATASET_PATH] [NEED_PREPROCESS] [DEVICE_TYPE] [DEVICE_ID] [BACKEND]
  MINDIR_PATH      BACKEND cpp: a MindSpore Lite MINDIR (export.py --file_format ONNX, then tools/to_lite.py);
                   BACKEND python: the MINDIR export.py wrote (MindSpore 2.x)
  DATASET_PATH     LFW folder with pairs.txt and the images: images_150/ + lfw_landmark_150.txt, images/ or lfw/
                   (+ lfw_landmark.txt; without a landmark file the images must be aligned already)
  NEED_PREPROCESS  y: write the inputs into $INFER_WORK_DIR/input; n: reuse the ones there
  DEVICE_TYPE      CPU, GPU or Ascend
  DEVICE_ID        device index (GPU/Ascend)
  BACKEND          cpp (default, the C++ harness on MindSpore Lite) or python (MindSpore's MINDIR runner);
                   also as "--backend python" or INFER_BACKEND=python
EOF
    exit 2
}

fail() {
    echo "error: $*" >&2
    exit 1
}

# Run a step with its output in a log; on failure show the log's end.
run_logged() {
    local log="$1"
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        fail "$(basename "$log" .log) failed (log: $log)"
    fi
}

args=("$@")
if [[ $# -ge 6 && "$6" == --backend=* ]]; then
    args=("${@:1:5}" "${6#--backend=}")
elif [[ $# -eq 7 && "$6" == "--backend" ]]; then
    args=("${@:1:5}" "$7")
fi
if [[ ${#args[@]} -ne 5 && ${#args[@]} -ne 6 ]]; then
    usage
fi
model="${args[0]}"
dataset="${args[1]}"
need_preprocess="${args[2]}"
device_type="${args[3]}"
device_id="${args[4]}"
backend="${args[5]:-${INFER_BACKEND:-cpp}}"
[[ "$need_preprocess" == y || "$need_preprocess" == n ]] || { echo "NEED_PREPROCESS must be y or n" >&2; usage; }
[[ "$device_type" =~ ^(CPU|GPU|Ascend)$ ]] || { echo "DEVICE_TYPE must be CPU, GPU or Ascend" >&2; usage; }
[[ "$device_id" =~ ^[0-9]+$ ]] || { echo "DEVICE_ID must be a non-negative integer" >&2; usage; }
[[ "$backend" == cpp || "$backend" == python ]] || { echo "BACKEND must be cpp or python" >&2; usage; }
[[ -f "$model" ]] || fail "MINDIR_PATH $model is not a file"
[[ -d "$dataset" ]] || fail "DATASET_PATH $dataset is not a folder"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
model="$(realpath "$model")"
dataset="$(realpath "$dataset")"
work="$(realpath -m "${INFER_WORK_DIR:-$PWD/infer_310}")"
input_dir="$work/input"
result_dir="$work/result_$backend"
mkdir -p "$work"

# The model's own description, when export.py (or tools/to_lite.py) wrote one.
sidecar="$model.json"
model_info=()
if [[ -f "$sidecar" ]]; then
    model_info=(--model_info "$sidecar")
else
    echo "note: no $sidecar (written by export.py): inputs use the config's image_size" >&2
fi
# Ascend inference (the 310) runs static shapes only: a model the sidecar marks as dynamic-batch is refused.
if [[ "$device_type" == Ascend && -f "$sidecar" ]] &&
    "$python" -c 'import json, sys; info = json.load(open(sys.argv[1]))
sys.exit(0 if info.get("dynamic_batch") or info.get("input_shape", [1])[0] is None else 1)' "$sidecar"; then
    fail "$model has a dynamic batch ($sidecar), which Ascend inference (the 310) does not run: export a fixed" \
         "batch (export.py --export_batch_size N, without --dynamic_batch; for BACKEND cpp convert it with" \
         "tools/to_lite.py --device_target Ascend) and run that"
fi
mindir_line="$("$python" -c 'import sys; sys.path.insert(0, sys.argv[1])
from src.eval.mindir_info import read_mindir_info
info = read_mindir_info(sys.argv[2]); print(info.mindir_version, info.describe())' "$repo" "$model")" ||
    fail "$model is not a MINDIR file"
mindir_version="${mindir_line%% *}"
echo "model: $model (${mindir_line#* })"
if [[ "$backend" == cpp && "$mindir_version" -gt 1 ]]; then
    echo "warning: MindSpore Lite 2.0 (the PyPI wheel tools/fetch_lite.sh unpacks) reads MindIR version <= 1;" \
         "this looks like export.py's MINDIR. Convert it (export.py --file_format ONNX, then tools/to_lite.py)" \
         "or run it with BACKEND python. Trying anyway: a Lite package matching the MindSpore version may read it." >&2
fi

if [[ "$need_preprocess" == y ]]; then
    pairs="${PAIRS:-$dataset/pairs.txt}"
    if [[ -n "${IMAGES:-}" ]]; then
        images="$IMAGES"
        landmarks="${LANDMARKS:-}"
    elif [[ -d "$dataset/images_150" ]]; then
        images="$dataset/images_150"
        landmarks="${LANDMARKS-$dataset/lfw_landmark_150.txt}"
    else
        images="$dataset/images"
        [[ -d "$images" ]] || images="$dataset/lfw"
        landmarks="${LANDMARKS-$dataset/lfw_landmark.txt}"
    fi
    [[ -f "$pairs" ]] || fail "pairs file $pairs not found (set PAIRS)"
    [[ -d "$images" ]] || fail "no image folder in $dataset (images_150/, images/ or lfw/; or set IMAGES)"
    if [[ -n "$landmarks" && ! -f "$landmarks" ]]; then
        echo "note: no landmark file $landmarks: the images are taken as aligned already" >&2
        landmarks=""
    fi
    echo "preprocess: $pairs, images $images, landmarks ${landmarks:-none (aligned images)} -> $input_dir"
    [[ -z "${CONFIG_PATH:-}" ]] || model_info+=(--config_path "$CONFIG_PATH")
    target="{pairs: '$pairs', root: '$images'${landmarks:+, landmarks: '$landmarks'}}"
    run_logged "$work/preprocess.log" "$python" "$repo/preprocess.py" "--val_targets=[$target]" \
        --infer_input_dir "$input_dir" "${model_info[@]}"
elif [[ ! -f "$input_dir/index.txt" ]]; then
    fail "NEED_PREPROCESS is n but $input_dir/index.txt does not exist: run with y first"
fi

rm -rf "$result_dir"
infer_args=(--model_path "$model" --input_dir "$input_dir" --output_dir "$result_dir" --device_type "$device_type"
            --device_id "$device_id" --batch_size "${BATCH_SIZE:-64}" --thread_num "${THREAD_NUM:-2}")
if [[ "$backend" == cpp ]]; then
    face_infer="${FACE_INFER:-$repo/ascend310_infer/build/face_infer}"
    if [[ ! -x "$face_infer" ]]; then
        [[ -n "${MINDSPORE_LITE_HOME:-${MS_LITE_HOME:-}}" ]] ||
            fail "$face_infer is not built and MINDSPORE_LITE_HOME is not set: export" \
                 "MINDSPORE_LITE_HOME=\"\$($repo/tools/fetch_lite.sh | tail -n 1)\" (or a Lite 2.x package), or set" \
                 "FACE_INFER, or use BACKEND python"
        echo "building $face_infer with ascend310_infer/build.sh"
        run_logged "$work/build.log" bash "$repo/ascend310_infer/build.sh" "$(dirname "$face_infer")"
    fi
    echo "inference: $face_infer (MindSpore Lite, $device_type $device_id)"
    run_logged "$work/infer.log" env GLOG_v="${GLOG_v:-3}" "$face_infer" "${infer_args[@]}"
else
    echo "inference: tools/mindir_infer.py (MindSpore MINDIR runner, $device_type $device_id)"
    run_logged "$work/infer.log" "$python" "$repo/tools/mindir_infer.py" "${infer_args[@]}"
fi
grep "^Summary:" "$work/infer.log"

run_logged "$work/acc.log" "$python" "$repo/postprocess.py" --infer_input_dir "$input_dir" \
    --infer_result_dir "$result_dir" --fusion "${FUSION:-concat}"
grep "LFWACC=" "$work/acc.log"
