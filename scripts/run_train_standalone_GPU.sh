#!/bin/bash
# Train on one GPU (mixed precision when the config sets amp_level: O2).
USAGE="bash scripts/run_train_standalone_GPU.sh DEVICE_ID [CONFIG] [--key=value ...]
  DEVICE_ID  the GPU index; CONFIG defaults to sphereface_config.yaml
  e.g. bash scripts/run_train_standalone_GPU.sh 0 sphereface_config.yaml --amp_level=O2"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_standalone GPU "$@"
