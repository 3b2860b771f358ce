#!/bin/bash
# Data-parallel training on DEVICE_NUM GPUs of this machine: msrun over NCCL, or mpirun (OpenMPI) when msrun is
# not there (LAUNCHER=mpirun forces it). Gradients are averaged over the GPUs; checkpoints and validation on rank 0.
USAGE="bash scripts/run_distribute_train_GPU.sh DEVICE_NUM VISIBLE_DEVICES [CONFIG] [--key=value ...]
  VISIBLE_DEVICES  comma-separated GPU indices, DEVICE_NUM of them
  e.g. bash scripts/run_distribute_train_GPU.sh 2 0,1 sphereface_config.yaml --amp_level=O2"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
is_count "$1" || usage_exit "DEVICE_NUM must be a positive number"
[[ "$2" =~ ^[0-9]+(,[0-9]+)*$ ]] || usage_exit "VISIBLE_DEVICES must be like 0,1,2,3"
DEVICE_NUM=$1
IFS=, read -r -a DEVICES <<< "$2"
[ "${#DEVICES[@]}" -eq "$DEVICE_NUM" ] || usage_exit "VISIBLE_DEVICES lists ${#DEVICES[@]} GPUs, DEVICE_NUM is $DEVICE_NUM"
export CUDA_VISIBLE_DEVICES=$2
shift 2
take_config "$@"; shift $SHIFT
OUT="$(output_dir "$@" --device_target=GPU)" || exit 2
if [ "$LAUNCHER" != mpirun ] && find_msrun > /dev/null; then
    run_msrun "$DEVICE_NUM" "$OUT" "$@" --device_target=GPU
else
    command -v mpirun > /dev/null || usage_exit "neither msrun nor mpirun found"
    echo "mpirun: $DEVICE_NUM processes, logs in $OUT/mpirun_log"
    mpirun -n "$DEVICE_NUM" --allow-run-as-root --output-filename "$OUT/mpirun_log" --merge-stderr-to-stdout \
        "$PYTHON" "$ROOT/train.py" --config_path="$CONFIG" "$@" --device_target=GPU
fi
