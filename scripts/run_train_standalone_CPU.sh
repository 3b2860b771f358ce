#!/bin/bash
# Train on this machine's CPU (float32), one process.
USAGE="bash scripts/run_train_standalone_CPU.sh DEVICE_ID [CONFIG] [--key=value ...]
  DEVICE_ID  ignored on CPU (give 0); CONFIG defaults to sphereface_config.yaml
  e.g. bash scripts/run_train_standalone_CPU.sh 0 configs/digits_demo.yaml --train_list=data/digits/train_list.txt"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_standalone CPU "$@"
