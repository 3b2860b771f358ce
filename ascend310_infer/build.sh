#!/usr/bin/env bash
# Configure and build the inference harness (Release, -O2).
#
#   ascend310_infer/build.sh [BUILD_DIR]     (default: ascend310_infer/build)
#
# Needs MINDSPORE_LITE_HOME (or MS_LITE_HOME), e.g.
#   export MINDSPORE_LITE_HOME="$(tools/fetch_lite.sh | tail -n 1)"
# Prints the path of the built executable as its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${1:-$here/build}"

cmake -S "$here" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$build_dir" --parallel "$(nproc)" >&2
echo "$build_dir/face_infer"
