"""The CPU PReLU kernel (src/kernels/prelu_cpu.cc via src/kernels/prelu.py) against nn.PReLU, and the kernels'
build cache (src/kernels/build.py)."""

import ctypes
import os
import shutil

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from src.kernels import build
from src.kernels.library import kernel_library
from src.kernels.prelu import CpuPReLU
from src.model_utils.device import configured_cpu_threads
from tests.kernel_helpers import require_kernels, value_and_grads


@pytest.fixture
def kernel_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEREC_KERNEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("mode", ["GRAPH", "PYNATIVE"])
@pytest.mark.parametrize("shape", [(4, 6, 9, 7), (5, 3), (2, 8, 1, 1)])
def test_kernel_matches_nn_prelu(mode, shape):
    require_kernels()
    rng = np.random.RandomState(0)
    x = ms.Tensor(rng.randn(*shape).astype(np.float32))
    x[..., 0] = 0.0  # the boundary: PReLU(0) = 0, and the slope side of the gradient
    slopes = ms.Tensor(rng.uniform(-0.5, 0.9, shape[1]).astype(np.float32))
    native = nn.PReLU(shape[1])
    native.w.set_data(slopes)
    custom = CpuPReLU(native)
    ms.set_context(mode=getattr(ms, f"{mode}_MODE"))
    try:
        expected, got = value_and_grads(native, x), value_and_grads(custom, x)
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    xn, wn = x.asnumpy(), slopes.asnumpy().reshape((1, -1) + (1,) * (len(shape) - 2))
    np.testing.assert_array_equal(got[0], np.where(xn > 0, xn, wn * xn))
    for name, want, have in zip(("y", "dx", "dw"), expected, got):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_slope_gradient_does_not_depend_on_the_thread_count():
    require_kernels()
    rng = np.random.RandomState(2)
    x = ms.Tensor(rng.randn(16, 32, 40, 40).astype(np.float32))  # large enough to run multi-threaded
    cell = CpuPReLU(nn.PReLU(32))
    library = ctypes.CDLL(kernel_library("prelu_cpu.cc"))
    results = []
    try:
        for threads in (1, 2, 3):
            library.PReLUSetThreads(threads)
            results.append(value_and_grads(cell, x))
    finally:
        library.PReLUSetThreads(configured_cpu_threads())
    for other in results[1:]:
        for want, have in zip(results[0], other):
            np.testing.assert_array_equal(have, want)


def test_library_is_cached_and_rebuilt_when_the_source_changes(kernel_cache, tmp_path, monkeypatch):
    require_kernels()
    first = build.compiled_library("prelu_cpu.cc")
    assert os.path.dirname(first) == str(kernel_cache)
    mtime = os.path.getmtime(first)
    assert build.compiled_library("prelu_cpu.cc") == first and os.path.getmtime(first) == mtime
    sources = tmp_path / "sources"
    shutil.copytree(build.KERNEL_DIR, sources, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr(build, "KERNEL_DIR", str(sources))
    assert build.compiled_library("prelu_cpu.cc") == first  # the same source and headers elsewhere
    with open(sources / "kernel_threads.h", "a", encoding="utf-8") as f:
        f.write("// edited\n")
    second = build.compiled_library("prelu_cpu.cc")  # a header of the folder changed
    with open(sources / "prelu_cpu.cc", "a", encoding="utf-8") as f:
        f.write("// edited\n")
    third = build.compiled_library("prelu_cpu.cc")
    assert len({first, second, third}) == 3 and all(os.path.isfile(path) for path in (first, second, third))
    assert not [name for name in os.listdir(kernel_cache) if name.startswith(".")], "no partial files left"


def test_compiler_failures_are_named(kernel_cache, tmp_path, monkeypatch):
    if shutil.which("g++") is None:
        pytest.skip("no g++ here to compile the broken source with")
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(build.KernelBuildError, match="no C\\+\\+ compiler 'no-such-compiler-xyz'"):
        build.compiled_library("prelu_cpu.cc")
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "broken.cc").write_text("this is not C++\n", encoding="utf-8")
    monkeypatch.setenv("CXX", "g++")
    monkeypatch.setattr(build, "KERNEL_DIR", str(sources))
    with pytest.raises(build.KernelBuildError, match="failed to build broken.cc"):
        build.compiled_library("broken.cc")
    assert not os.listdir(kernel_cache), "a failed build leaves nothing behind"


def test_a_failure_is_remembered_for_the_process(kernel_cache, monkeypatch):
    """The second call raises the first call's error without looking for the compiler again."""
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    monkeypatch.setattr(build, "_failures", {})
    with pytest.raises(build.KernelBuildError) as first:
        build.compiled_library("prelu_cpu.cc")
    monkeypatch.setattr(build.shutil, "which", lambda name: pytest.fail("the compiler was looked for again"))
    with pytest.raises(build.KernelBuildError) as second:
        build.compiled_library("prelu_cpu.cc")
    assert second.value is first.value


def test_build_command_names_a_missing_compiler(tmp_path):
    """``python -m src.kernels`` (the ahead-of-time build) exits 1 with the reason, no traceback."""
    import subprocess
    import sys

    env = dict(os.environ, CXX="no-such-compiler-xyz", FACEREC_KERNEL_CACHE=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "src.kernels"], capture_output=True, text=True, env=env, cwd=build.KERNEL_DIR + "/../.."
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: no C++ compiler 'no-such-compiler-xyz' on PATH" in result.stderr
