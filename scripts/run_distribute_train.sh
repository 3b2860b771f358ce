#!/bin/bash
# Data-parallel training on Ascend NPUs of this machine (HCCL; gradients averaged; checkpoints and validation on
# rank 0), launched by msrun with DEVICE_NUM workers, or, given a rank table (RANK_TABLE_FILE, a .json), one
# process per device as the table lists them (RANK_ID = DEVICE_ID = 0..n-1, RANK_START offsets the device ids).
USAGE="bash scripts/run_distribute_train.sh DEVICE_NUM|RANK_TABLE_FILE [CONFIG] [--key=value ...]
  e.g. bash scripts/run_distribute_train.sh 8 sphereface_config.yaml
       bash scripts/run_distribute_train.sh /path/hccl_8p.json sphereface_config.yaml"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 1 ] || usage_exit
if is_count "$1"; then
    DEVICE_NUM=$1
else
    [ -f "$1" ] || usage_exit "the first argument must be a device count or a rank table file: $1"
    RANK_TABLE_FILE="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
    DEVICE_NUM=$("$PYTHON" -c 'import json, sys
table = json.load(open(sys.argv[1]))
print(sum(len(server["device"]) for server in table["server_list"]))' "$RANK_TABLE_FILE") \
        || usage_exit "cannot read the device list of the rank table $RANK_TABLE_FILE"
fi
shift
take_config "$@"; shift $SHIFT
OUT="$(output_dir "$@" --device_target=Ascend)" || exit 2
if [ -z "$RANK_TABLE_FILE" ]; then
    run_msrun "$DEVICE_NUM" "$OUT" "$@" --device_target=Ascend
    exit $?
fi
export RANK_TABLE_FILE RANK_SIZE=$DEVICE_NUM
mkdir -p "$OUT/rank_table_log"
echo "rank table $RANK_TABLE_FILE: $DEVICE_NUM processes, logs in $OUT/rank_table_log"
PIDS=()
for ((rank = 0; rank < DEVICE_NUM; rank++)); do
    RANK_ID=$rank DEVICE_ID=$((rank + ${RANK_START:-0})) "$PYTHON" "$ROOT/train.py" --config_path="$CONFIG" "$@" \
        --device_target=Ascend > "$OUT/rank_table_log/worker_$rank.log" 2>&1 &
    PIDS+=($!)
done
STATUS=0
for pid in "${PIDS[@]}"; do wait "$pid" || STATUS=1; done
exit $STATUS
