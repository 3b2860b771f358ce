#!/bin/bash
# Data-parallel training with WORKERS processes on this machine's CPU (msrun; gradients averaged over workers).
# Set global_batch_size to keep a run the same on any number of workers. MASTER_PORT: default a free port.
USAGE="bash scripts/run_distribute_train_CPU.sh WORKERS [CONFIG] [--key=value ...]
  e.g. bash scripts/run_distribute_train_CPU.sh 2 configs/digits_demo.yaml --global_batch_size=64"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
is_count "$1" || usage_exit "WORKERS must be a positive number"
WORKERS=$1
shift
take_config "$@"; shift $SHIFT
OUT="$(output_dir "$@" --device_target=CPU)" || exit 2
run_msrun "$WORKERS" "$OUT" "$@" --device_target=CPU
