# Shared by the launchers (sourced): project root, Python, argument checks, the run's output folder.
# PYTHON (default: python) and MSRUN (default: msrun next to PYTHON, else on PATH) may be set by the caller.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"

usage_exit() {
    [ -n "$1" ] && echo "error: $1" >&2
    echo "usage: $USAGE" >&2
    exit 2
}

is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

# take_config ARGS...: CONFIG = the first argument unless it is a --key=value (default: sphereface_config.yaml);
# sets CONFIG and SHIFT (how many arguments it used).
take_config() {
    CONFIG="$ROOT/sphereface_config.yaml"
    SHIFT=0
    if [ $# -ge 1 ] && [[ "$1" != --* ]]; then
        CONFIG="$1"
        SHIFT=1
    fi
    [ -f "$CONFIG" ] || usage_exit "config file not found: $CONFIG"
    CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")"
}

# output_dir ARGS...: the run's output folder (created), from the config and the --key=value arguments.
output_dir() {
    local out
    out="$("$PYTHON" "$ROOT/tools/config_value.py" output_dir --config_path "$CONFIG" "$@")" || exit 2
    mkdir -p "$out" && (cd "$out" && pwd)
}

# train_standalone TARGET DEVICE_ID [CONFIG] [--key=value ...]: one train.py process on TARGET (CPU, GPU,
# Ascend; the CPU ignores DEVICE_ID), its console copied to OUTPUT_DIR/console_rank0.log.
train_standalone() {
    local target=$1
    shift
    [[ "$1" =~ ^[0-9]+$ ]] || usage_exit "DEVICE_ID must be a number"
    export DEVICE_ID=$1
    shift
    take_config "$@"; shift $SHIFT
    OUT="$(output_dir "$@" --device_target="$target")" || exit 2
    set -o pipefail
    "$PYTHON" "$ROOT/train.py" --config_path="$CONFIG" "$@" --device_target="$target" --device_id="$DEVICE_ID" 2>&1 \
        | tee "$OUT/console_rank0.log"
}

# run_eval TARGET DEVICE_ID CKPT_FILE_OR_DIR [CONFIG] [--key=value ...]: eval.py on TARGET, its console also in
# <output_dir>/eval_console.log. Relative paths are relative to the current directory, as for the launchers.
run_eval() {
    local target=$1 ckpt
    shift
    [ $# -ge 2 ] || usage_exit "DEVICE_ID and CKPT_FILE_OR_DIR are required"
    [[ "$1" =~ ^[0-9]+$ ]] || usage_exit "DEVICE_ID must be a number, got '$1'"
    export DEVICE_ID=$1
    [ -e "$2" ] || usage_exit "CKPT_FILE_OR_DIR not found: $2"
    ckpt=$2
    shift 2
    take_config "$@"; shift $SHIFT
    local arg
    for arg in "$@"; do
        [[ "$arg" == --*=* ]] || usage_exit "extra arguments must be --key=value, got '$arg'"
    done
    OUT="$(output_dir "$@" --device_target="$target")" || exit 2
    set -o pipefail
    "$PYTHON" "$ROOT/eval.py" --config_path="$CONFIG" --ckpt_file="$ckpt" "$@" --device_target="$target" \
        --device_id="$DEVICE_ID" 2>&1 | tee "$OUT/eval_console.log"
}

find_msrun() {
    if [ -n "$MSRUN" ]; then echo "$MSRUN"; return; fi
    local beside
    beside="$(dirname "$(command -v "$PYTHON")")/msrun"
    if [ -x "$beside" ]; then echo "$beside"; else command -v msrun; fi
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_msrun WORKERS OUT ARGS...: WORKERS processes of train.py on this machine plus msrun's scheduler; each
# worker's console goes to OUT/msrun_log/worker_<rank>.log (train.py also writes OUT/log_rank<rank>.txt), msrun's
# own to OUT/msrun_log/msrun_console.log. When msrun fails, tools/distributed_report.py says which worker ended
# how (and appends it to log_rank0.txt). msrun starts the workers with the 'python' found on PATH: PYTHON's
# folder goes first.
run_msrun() {
    local workers=$1 out=$2 msrun port status
    shift 2
    PATH="$(dirname "$(command -v "$PYTHON")"):$PATH"
    msrun="$(find_msrun)" || usage_exit "msrun not found (it comes with MindSpore; set MSRUN=/path/to/msrun)"
    port="${MASTER_PORT:-$(free_port)}"
    echo "msrun: $workers workers, port $port, logs in $out/msrun_log"
    mkdir -p "$out/msrun_log"
    "$msrun" --worker_num="$workers" --local_worker_num="$workers" --master_addr=127.0.0.1 \
        --master_port="$port" --log_dir="$out/msrun_log" --join=True \
        "$ROOT/train.py" --config_path="$CONFIG" "$@" 2>&1 | tee "$out/msrun_log/msrun_console.log"
    status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        "$PYTHON" "$ROOT/tools/distributed_report.py" "$out" "$out/msrun_log/msrun_console.log"
    fi
    return "$status"
}
