#!/bin/bash
# Train on one GPU (mixed precision when the config sets amp_level: O2).
USAGE="bash scripts/run_train_standalone_GPU.sh DEVICE_ID [CONFIG] [--key=value ...]
  DEVICE_ID  the GPU index; CONFIG defaults to sphereface_config.yaml
  e.g. bash scripts/run_train_standalone_GPU.sh 0 sphereface_config.yaml --amp_level=O2"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ "$1" =~ ^[0-9]+$ ]] || usage_exit "DEVICE_ID must be a number"
export DEVICE_ID=$1
shift
take_config "$@"; shift $SHIFT
OUT="$(output_dir "$@" --device_target=GPU)" || exit 2
set -o pipefail
"$PYTHON" "$ROOT/train.py" --config_path="$CONFIG" "$@" --device_target=GPU --device_id="$DEVICE_ID" 2>&1 \
    | tee "$OUT/console_rank0.log"
