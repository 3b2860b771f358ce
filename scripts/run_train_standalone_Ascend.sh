#!/bin/bash
# Train on one Ascend NPU (mixed precision when the config sets amp_level: O2).
USAGE="bash scripts/run_train_standalone_Ascend.sh DEVICE_ID [CONFIG] [--key=value ...]
  DEVICE_ID  the NPU index; CONFIG defaults to sphereface_config.yaml
  e.g. bash scripts/run_train_standalone_Ascend.sh 0 sphereface_config.yaml --amp_level=O2"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_standalone Ascend "$@"
