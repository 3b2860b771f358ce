#!/bin/bash
# Evaluate a checkpoint, every checkpoint in a folder, or an exported MINDIR on one device.
# Usage: bash scripts/run_eval_standalone.sh DEVICE_TARGET DEVICE_ID CKPT_FILE_OR_DIR [--key=value ...]
# (normally called through run_eval_standalone_{Ascend,GPU,CPU}.sh). Runs from the project root, so relative
# paths in the config and in --key=value are relative to it; CKPT_FILE_OR_DIR may be relative to the caller.
# The output is also logged to eval_<TARGET>_<date>.log in the caller's directory.
set -o pipefail

usage() {
    echo "Usage: bash $1 [DEVICE_ID] [CKPT_FILE_OR_DIR] [--key=value ...]"
    echo "  e.g. bash $1 0 output/sphereface20_casia/ckpt --config_path=sphereface_config.yaml"
    echo "  extra --key=value pairs are eval.py config keys (python eval.py --help); relative paths in them"
    echo "  and in the config are relative to the project root"
}

TARGET=$1
CALLER=${CALLER_SCRIPT:-scripts/run_eval_standalone_$TARGET.sh}
if [ $# -lt 3 ]; then
    usage "$CALLER" >&2
    exit 1
fi
DEVICE_ID=$2
CKPT=$3
shift 3
if ! [[ "$DEVICE_ID" =~ ^[0-9]+$ ]]; then
    echo "error: DEVICE_ID must be a non-negative integer, got '$DEVICE_ID'" >&2
    usage "$CALLER" >&2
    exit 1
fi
if [ ! -e "$CKPT" ]; then
    echo "error: CKPT_FILE_OR_DIR '$CKPT' does not exist" >&2
    usage "$CALLER" >&2
    exit 1
fi
for arg in "$@"; do
    if [[ "$arg" != --*=* ]]; then
        echo "error: extra arguments must be --key=value, got '$arg'" >&2
        usage "$CALLER" >&2
        exit 1
    fi
done

CKPT=$(cd "$(dirname "$CKPT")" && pwd)/$(basename "$CKPT")
LOG=$(pwd)/eval_${TARGET}_$(date +%Y%m%d_%H%M%S).log
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}
cd "$ROOT" || exit 1
echo "eval.py on $TARGET:$DEVICE_ID, model $CKPT; log: $LOG"
DEVICE_ID=$DEVICE_ID "$PYTHON" eval.py --device_target="$TARGET" --device_id="$DEVICE_ID" --ckpt_file="$CKPT" "$@" \
    2>&1 | tee "$LOG"
