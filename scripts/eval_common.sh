# Shared by run_eval_standalone_{Ascend,GPU,CPU}.sh (sourced after they set USAGE).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

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
