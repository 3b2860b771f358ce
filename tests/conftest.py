"""Shared test set-up: MindSpore on the CPU in graph mode with two threads (settable once a process), ../shared,
and MindSpore Lite with the C++ harness built."""

import atexit
import logging
import os
import shutil
import tempfile

import mindspore as ms
import pytest

from src.deploy import lite_harness
from src.model_utils.cpu_isa import apply_cpu_isa
from src.model_utils.device import set_cpu_threads

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
    try:
        return lite_harness.lite_home()
    except lite_harness.LiteUnreachable as error:
        pytest.skip(str(error))
    except lite_harness.HarnessError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def face_infer(lite_home, tmp_path_factory):
    """The ascend310_infer harness built with build.sh into a temporary folder; returns the executable."""
    try:
        return lite_harness.build_face_infer(tmp_path_factory.mktemp("face_infer_build"), lite_home)
    except lite_harness.HarnessError as error:
        pytest.fail(str(error))


@pytest.fixture
def restore_logging():
    """src.train.loop.train() configures the root logger for its run; put pytest's handlers back afterwards."""
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
