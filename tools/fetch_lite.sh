#!/usr/bin/env bash
# Fetch MindSpore Lite 2.0.0 (C++ headers, runtime libraries, converter) from PyPI and unpack it, without
# installing it, into a cache folder. Prints the folder to export as MINDSPORE_LITE_HOME.
#
#   tools/fetch_lite.sh [CACHE_DIR]
#   export MINDSPORE_LITE_HOME="$(tools/fetch_lite.sh | tail -n 1)"
#
# CACHE_DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/facerec/mindspore_lite-2.0.0. The only Lite
# release on PyPI is 2.0.0, and only as a Python 3.7 wheel (168.6 MB download, ~480 MB unpacked);
# pip downloads it whatever Python it runs under. PYTHON selects the interpreter whose pip is used
# (default python3). Running the script again once the wheel is unpacked downloads nothing.
#
# Layout of CACHE_DIR after unpacking (the wheel's own layout, nothing moved):
#   mindspore_lite/                      <- MINDSPORE_LITE_HOME; CACHE_DIR goes on PYTHONPATH for the
#     __init__.py, converter.py, ...        Python API (converter), which needs Python 3.7 and numpy
#     include/api/model.h, context.h, types.h, status.h, ...   C++ API headers; they include each other
#     include/mindapi/base/*.h, include/registry/*.h               as "include/api/...", so both
#                                                                   MINDSPORE_LITE_HOME and its include/
#                                                                   go on the include path
#     lib/libmindspore-extendrt_python.so   C++ runtime (mindspore::Model, Context, ...), old C++ ABI
#                                           (build with -D_GLIBCXX_USE_CXX11_ABI=0)
#     lib/libmindspore_converter.so, libmindspore_core.so, libdnnl.so.2, libmindspore_glog.so.0, ...
#                                           its dependencies; the library has no RUNPATH, so a program
#                                           linked to it needs lib/ as an old-style DT_RPATH
#                                           (-Wl,--disable-new-dtags) or on LD_LIBRARY_PATH
#     lib/_c_lite_wrapper.cpython-37m-x86_64-linux-gnu.so   Python 3.7 binding (RPATH $ORIGIN)
#   .complete                             written last; its presence means the unpacking finished
set -euo pipefail

VERSION=2.0.0
CACHE_DIR="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/facerec/mindspore_lite-${VERSION}}"
PYTHON="${PYTHON:-python3}"

if [[ -f "$CACHE_DIR/.complete" ]]; then
    echo "MindSpore Lite ${VERSION} already unpacked in $CACHE_DIR" >&2
else
    mkdir -p "$(dirname "$CACHE_DIR")"
    work="$(mktemp -d "$(dirname "$CACHE_DIR")/.fetch_lite.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    echo "Downloading mindspore-lite==${VERSION} (Python 3.7 wheel, ~170 MB) ..." >&2
    "$PYTHON" -m pip download --no-deps --python-version 3.7 --only-binary=:all: \
        "mindspore-lite==${VERSION}" -d "$work/wheel" >&2
    wheel=("$work"/wheel/mindspore_lite-"${VERSION}"-*.whl)
    echo "Unpacking ${wheel[0]##*/} ..." >&2
    "$PYTHON" -m zipfile -e "${wheel[0]}" "$work/unpacked"
    if [[ ! -f "$work/unpacked/mindspore_lite/include/api/model.h" ||
          ! -f "$work/unpacked/mindspore_lite/lib/libmindspore-extendrt_python.so" ]]; then
        echo "error: the wheel does not have the expected layout (mindspore_lite/include/api/model.h," \
             "mindspore_lite/lib/libmindspore-extendrt_python.so)" >&2
        exit 1
    fi
    touch "$work/unpacked/.complete"
    # A run started at the same time may have finished first: keep its copy, which may be in use.
    if [[ ! -f "$CACHE_DIR/.complete" ]]; then
        rm -rf "$CACHE_DIR"  # an unfinished leftover
        if ! mv -T "$work/unpacked" "$CACHE_DIR" 2>/dev/null && [[ ! -f "$CACHE_DIR/.complete" ]]; then
            echo "error: could not move the unpacked wheel to $CACHE_DIR" >&2
            exit 1
        fi
    fi
    echo "Unpacked into $CACHE_DIR" >&2
fi

echo "export MINDSPORE_LITE_HOME=$CACHE_DIR/mindspore_lite" >&2
echo "$CACHE_DIR/mindspore_lite"
