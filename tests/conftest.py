"""Shared test set-up: MindSpore on the CPU in graph mode with two threads (settable once a process), ../shared,
and MindSpore Lite with the C++ harness built."""

import atexit
import logging
import os
import shutil
import subprocess
import tempfile

import mindspore as ms
import pytest

from src.model_utils.cpu_isa import apply_cpu_isa
from src.model_utils.device import set_cpu_threads
from src.model_utils.pip_errors import INDEX_UNREACHABLE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared")

# The CPU kernels (src/kernels) compile into a folder of this test session, not the user's cache; subprocesses
# (train.py, msrun workers) inherit it.
os.environ["FACEREC_KERNEL_CACHE"] = tempfile.mkdtemp(prefix="facerec_kernels_")
atexit.register(shutil.rmtree, os.environ["FACEREC_KERNEL_CACHE"], True)
# The project's oneDNN instruction set choice, as every entry point makes it (before the first CPU operator).
apply_cpu_isa("auto")
ms.set_device("CPU")
ms.set_context(mode=ms.GRAPH_MODE)
set_cpu_threads(2)


@pytest.fixture
def shared_dir():
    """../shared beside the project, or a skip naming it when it is absent."""
    if not os.path.isdir(SHARED):
        pytest.skip(f"the shared data folder ../shared ({os.path.abspath(SHARED)}) is absent")
    return SHARED


@pytest.fixture(scope="session")
def lite_home():
    """$MINDSPORE_LITE_HOME or $MS_LITE_HOME, else the wheel that tools/fetch_lite.sh unpacks into its cache.

    Skips only when the download fails because PyPI cannot be reached.
    """
    for variable in ("MINDSPORE_LITE_HOME", "MS_LITE_HOME"):
        if os.environ.get(variable):
            return os.environ[variable]
    result = subprocess.run(
        ["bash", os.path.join(REPO, "tools", "fetch_lite.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        if any(marker in result.stderr for marker in INDEX_UNREACHABLE):
            pytest.skip(
                "MINDSPORE_LITE_HOME is not set and tools/fetch_lite.sh cannot reach PyPI to download "
                "mindspore-lite==2.0.0 (no network)"
            )
        pytest.fail(f"tools/fetch_lite.sh failed:\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def face_infer(lite_home, tmp_path_factory):
    """The ascend310_infer harness built with build.sh into a temporary folder; returns the executable."""
    build_dir = tmp_path_factory.mktemp("face_infer_build")
    env = dict(os.environ, MINDSPORE_LITE_HOME=lite_home)
    result = subprocess.run(
        ["bash", os.path.join(REPO, "ascend310_infer", "build.sh"), str(build_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"build.sh failed:\n{result.stderr[-4000:]}"
    executable = result.stdout.strip().splitlines()[-1]
    assert os.access(executable, os.X_OK), executable
    return executable


@pytest.fixture
def restore_logging():
    """train.train() configures the root logger for its run; put pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            handler.close()
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def weights():
    """The converted MTCNN checkpoint, fetched and converted on first use; a skip when it is not cached and the
    package index cannot be reached."""
    from src.detect.weights import WeightsError, resolve_weights

    try:
        return resolve_weights()
    except WeightsError as err:
        if "cannot be reached" in str(err):
            pytest.skip(f"MTCNN weights not cached and the package index cannot be reached: {err}")
        raise
