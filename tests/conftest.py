"""MindSpore runs on the CPU in graph mode with two threads (the thread count may be set only once a process)."""
import os

import mindspore as ms
import pytest

from src.model_utils.device import set_cpu_threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")

ms.set_device("CPU")
ms.set_context(mode=ms.GRAPH_MODE)
set_cpu_threads(2)


@pytest.fixture
def shared_dir():
    """../shared beside the project, or a skip naming it when it is absent."""
    if not os.path.isdir(SHARED):
        pytest.skip(f"the shared data folder ../shared ({os.path.abspath(SHARED)}) is absent")
    return SHARED
