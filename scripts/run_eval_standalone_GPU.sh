#!/bin/bash
# Evaluate on one GPU: a checkpoint, every checkpoint of a folder (a table, the best
# marked) or an exported MINDIR.
USAGE="bash scripts/run_eval_standalone_GPU.sh DEVICE_ID CKPT_FILE_OR_DIR [CONFIG] [--key=value ...]
  DEVICE_ID  the GPU index; CKPT_FILE_OR_DIR a .ckpt, a folder of .ckpt files or a .mindir;
  CONFIG defaults to sphereface_config.yaml; --key=value pairs are eval.py config keys (python eval.py --help)
  e.g. bash scripts/run_eval_standalone_GPU.sh 0 output/sphereface20_casia/checkpoints --fusion=sum"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
run_eval GPU "$@"
