"""The C++ MindSpore Lite harness (ascend310_infer/face_infer) from Python: find Lite, build the harness, run it
and read what it prints and writes (inputs and outputs in the layout of src/deploy/bin_layout.py).

Used by the tests and by benchmarks/bench_infer.py; the harness itself is documented in ascend310_infer/README.md.
"""

import os
import re
import shutil
import subprocess

import numpy as np

from src.model_utils.pip_errors import INDEX_UNREACHABLE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_SCRIPT = os.path.join(REPO, "ascend310_infer", "build.sh")
FETCH_SCRIPT = os.path.join(REPO, "tools", "fetch_lite.sh")
SUMMARY = re.compile(
    r"^Summary: (?P<images>\d+) images, embedding (?P<embedding>\d+), batch (?P<batch>\d+), "
    r"(?P<batches>\d+) batches, predict (?P<predict_ms>[\d.]+) ms, (?P<img_s>[\d.]+) images/s"
    r" \(with file I/O (?P<img_s_io>[\d.]+) images/s\)$",
    re.MULTILINE,
)
SUMMARY_COUNTS = ("images", "embedding", "batch", "batches")


class HarnessError(RuntimeError):
    """Lite, a build tool or the harness's output is missing or wrong; the message says which."""


class LiteUnreachable(HarnessError):
    """MindSpore Lite is not set up and tools/fetch_lite.sh cannot reach PyPI to download it."""


def lite_home():
    """$MINDSPORE_LITE_HOME or $MS_LITE_HOME, else the wheel that tools/fetch_lite.sh unpacks into its cache
    (downloaded on first use, ~170 MB)."""
    for variable in ("MINDSPORE_LITE_HOME", "MS_LITE_HOME"):
        if os.environ.get(variable):
            return os.environ[variable]
    result = subprocess.run(["bash", FETCH_SCRIPT], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        if any(marker in result.stderr for marker in INDEX_UNREACHABLE):
            raise LiteUnreachable(
                "MINDSPORE_LITE_HOME is not set and tools/fetch_lite.sh cannot reach PyPI to download "
                "mindspore-lite==2.0.0 (no network)"
            )
        raise HarnessError(f"tools/fetch_lite.sh failed:\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


def check_build_tools():
    """HarnessError naming what ascend310_infer/build.sh needs and PATH lacks (cmake, a C++ compiler)."""
    missing = [] if shutil.which("cmake") else ["cmake"]
    if not any(shutil.which(name) for name in ("c++", "g++", "clang++")):
        missing.append("a C++ compiler (c++, g++ or clang++)")
    if missing:
        raise HarnessError(f"building ascend310_infer/face_infer needs {' and '.join(missing)} on PATH")


def build_face_infer(build_dir, lite):
    """ascend310_infer/build.sh into ``build_dir`` against the Lite folder ``lite``; returns the executable."""
    check_build_tools()
    result = subprocess.run(
        ["bash", BUILD_SCRIPT, str(build_dir)],
        env=dict(os.environ, MINDSPORE_LITE_HOME=lite),
        capture_output=True,
        text=True,
        check=False,
    )
    executable = (result.stdout.strip().splitlines() or [""])[-1]
    if result.returncode != 0 or not os.access(executable, os.X_OK):
        raise HarnessError(f"ascend310_infer/build.sh failed:\n{result.stderr[-4000:]}")
    return executable


def run_face_infer(executable, model, input_dir, output_dir, *extra, timeout=300):
    """Run the harness with Lite's own logging down to errors; returns the CompletedProcess."""
    command = [
        executable,
        "--model_path",
        str(model),
        "--input_dir",
        str(input_dir),
        "--output_dir",
        str(output_dir),
        *extra,
    ]
    return subprocess.run(
        command, env=dict(os.environ, GLOG_v="3"), capture_output=True, text=True, timeout=timeout, check=False
    )


def parse_summary(stdout):
    """The harness's ``Summary:`` line -> {images, embedding, batch, batches: int; predict_ms, img_s, img_s_io:
    float}; HarnessError when it is absent."""
    match = SUMMARY.search(stdout)
    if not match:
        raise HarnessError(f"no 'Summary: ... images/s' line in the harness output:\n{stdout[-2000:]}")
    return {key: (int(value) if key in SUMMARY_COUNTS else float(value)) for key, value in match.groupdict().items()}


def read_batch_times(path):
    """The file of ``face_infer --batch_times``: each batch's predict time, in seconds."""
    return (np.loadtxt(path, dtype=np.float64, ndmin=1) / 1000.0).tolist()
