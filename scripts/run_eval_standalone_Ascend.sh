#!/bin/bash
# Evaluate on Ascend: bash scripts/run_eval_standalone_Ascend.sh [DEVICE_ID] [CKPT_FILE_OR_DIR] [--key=value ...]
# CKPT_FILE_OR_DIR: a .ckpt, a folder of .ckpt files (a table with the best marked) or an exported .mindir.
CALLER_SCRIPT="$0" exec bash "$(dirname "${BASH_SOURCE[0]}")/run_eval_standalone.sh" Ascend "$@"
