#!/bin/bash
# Train on one Ascend NPU (mixed precision when the config sets amp_level: O2).
USAGE="bash scripts/run_train_standalone_Ascend.sh DEVICE_ID [CONFIG] [--key=value ...]
  DEVICE_ID  the NPU index; CONFIG defaults to sphereface_config.yaml
  e.g. bash scripts/run_train_standalone_Ascend.sh 0 sphereface_config.yaml --amp_level=O2"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ "$1" =~ ^[0-9]+$ ]] || usage_exit "DEVICE_ID must be a number"
export DEVICE_ID=$1
shift
take_config "$@"; shift $SHIFT
OUT="$(output_dir "$@" --device_target=Ascend)" || exit 2
set -o pipefail
"$PYTHON" "$ROOT/train.py" --config_path="$CONFIG" "$@" --device_target=Ascend --device_id="$DEVICE_ID" 2>&1 \
    | tee "$OUT/console_rank0.log"
