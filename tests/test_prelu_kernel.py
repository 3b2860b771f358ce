"""The CPU PReLU kernel (src/kernels/prelu_cpu.cc via src/network/prelu.py) and the elementwise form against
nn.PReLU, the kernel's build cache, and how the config's prelu_kernel is resolved."""

import ctypes
import logging
import os
import shutil

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from src.kernels import build
from src.model_utils.device import configured_cpu_threads
from src.network import build_backbone, resolve_prelu_kernel
from src.network.prelu import KERNELS, CpuPReLU, ElementwisePReLU, prelu_class, prelu_library
from tests.kernel_helpers import value_and_grads


@pytest.fixture
def kernel_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEREC_KERNEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("kernel", [CpuPReLU, ElementwisePReLU])
@pytest.mark.parametrize("mode", ["GRAPH", "PYNATIVE"])
@pytest.mark.parametrize("shape", [(4, 6, 9, 7), (5, 3), (2, 8, 1, 1)])
def test_kernels_match_nn_prelu(kernel, mode, shape):
    rng = np.random.RandomState(0)
    x = ms.Tensor(rng.randn(*shape).astype(np.float32))
    x[..., 0] = 0.0  # the boundary: PReLU(0) = 0, and the slope side of the gradient
    slopes = ms.Tensor(rng.uniform(-0.5, 0.9, shape[1]).astype(np.float32))
    native, custom = nn.PReLU(shape[1]), kernel(shape[1])
    native.w.set_data(slopes)
    custom.w.set_data(slopes)
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
    rng = np.random.RandomState(2)
    x = ms.Tensor(rng.randn(16, 32, 40, 40).astype(np.float32))  # large enough to run multi-threaded
    cell = CpuPReLU(32)
    library = ctypes.CDLL(prelu_library())
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


@pytest.mark.parametrize("kernel", ["cpu_aot", "elementwise"])
def test_backbone_kernels_share_checkpoints(tmp_path, kernel):
    """A sphere4 trained with nn.PReLU loads into one built with another kernel: same parameter names, same
    outputs."""
    kwargs = {"embedding_size": 8, "image_size": (16, 16), "width": 0.125}
    native = build_backbone("sphere4", prelu_kernel="native", **kwargs)
    custom = build_backbone("sphere4", prelu_kernel=kernel, **kwargs)
    assert [p.name for p in native.get_parameters()] == [p.name for p in custom.get_parameters()]
    assert sum(isinstance(cell, prelu_class(kernel)) for _, cell in custom.cells_and_names()) == 4
    path = str(tmp_path / "native.ckpt")
    ms.save_checkpoint(native, path)
    ms.load_param_into_net(custom, ms.load_checkpoint(path), strict_load=True)
    x = ms.Tensor(np.random.RandomState(1).randn(2, 3, 16, 16).astype(np.float32))
    np.testing.assert_allclose(custom(x).asnumpy(), native(x).asnumpy(), rtol=1e-5, atol=1e-6)


def test_library_is_cached_and_rebuilt_when_the_source_changes(kernel_cache, tmp_path, monkeypatch):
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


def test_resolve_prelu_kernel(monkeypatch, caplog):
    for export_format in (None, "MINDIR", "ONNX", "AIR"):
        assert resolve_prelu_kernel("native", "CPU", export_format) == "native"
        assert resolve_prelu_kernel("elementwise", "GPU", export_format) == "elementwise"
        for device in ("GPU", "Ascend"):
            assert resolve_prelu_kernel("auto", device, export_format) == "native"
    assert resolve_prelu_kernel("auto", "CPU") == "cpu_aot"
    assert resolve_prelu_kernel("cpu_aot", "CPU") == "cpu_aot"
    assert resolve_prelu_kernel("auto", "CPU", "MINDIR") == "elementwise"
    for export_format in ("MINDIR", "ONNX", "AIR"):
        assert resolve_prelu_kernel("cpu_aot", "CPU", export_format) == "native"
    for export_format in ("ONNX", "AIR"):
        assert resolve_prelu_kernel("auto", "CPU", export_format) == "native"
    with pytest.raises(ValueError, match="cpu_aot runs only with device_target CPU, not GPU"):
        resolve_prelu_kernel("cpu_aot", "GPU")

    def no_compiler():
        raise build.KernelBuildError("no C++ compiler 'g++' on PATH")

    monkeypatch.setattr("src.network.prelu._forward_op", no_compiler)
    with caplog.at_level(logging.WARNING, logger="facerec.network"):
        assert resolve_prelu_kernel("auto", "CPU") == "native"
    assert "using MindSpore's PReLU" in caplog.text and "no C++ compiler" in caplog.text
    with pytest.raises(build.KernelBuildError):
        resolve_prelu_kernel("cpu_aot", "CPU")


def test_unknown_kernel_is_refused():
    with pytest.raises(ValueError, match=f"prelu_kernel must be one of {', '.join(KERNELS)}, got 'fast'"):
        build_backbone("sphere4", prelu_kernel="fast", embedding_size=8, image_size=(16, 16))
