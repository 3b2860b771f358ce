"""What the C++ CPU kernels of ``src/kernels`` share on the Python side: choosing between a layer's ``native``
MindSpore implementation and its ``cpu_aot`` kernel from a config key (``prelu_kernel``, ``depthwise_kernel``,
``conv_kernel``, ``batchnorm_kernel``), and loading a kernel library set to MindSpore's CPU thread count.
"""

import ctypes
import functools
import logging
import os

from src.kernels.build import KernelBuildError, compiled_library
from src.model_utils.config import ConfigError
from src.model_utils.device import configured_cpu_threads

KERNELS = ("native", "cpu_aot")
LOG = logging.getLogger("facerec.network")


def check_kernel(key, kernel, choices=KERNELS):
    """``kernel`` when it is one of ``choices``, else ValueError naming ``key``."""
    if kernel not in choices:
        raise ValueError(f"{key} must be one of {', '.join(choices)}, got {kernel!r}")
    return kernel


def resolve_kernel(key, requested, device_target, build, native_name):
    """The config key ``key``'s value ``requested`` (auto/native/cpu_aot) for ``device_target``: ``auto`` ->
    ``cpu_aot`` on CPU when ``build()`` (which compiles and loads the kernel) succeeds, else ``native`` with a
    warning naming ``native_name`` (the MindSpore layer used instead); ``native`` on GPU/Ascend. ``cpu_aot``
    elsewhere than CPU is a ConfigError; without a working compiler, the KernelBuildError."""
    if requested == "native":
        return "native"
    if requested == "cpu_aot" and device_target != "CPU":
        raise ConfigError(
            f"config key '{key}': cpu_aot runs only with device_target CPU, not {device_target}; use auto or native"
        )
    if requested == "auto" and device_target != "CPU":
        return "native"
    try:
        build()
    except KernelBuildError as error:
        if requested == "cpu_aot":
            raise
        LOG.warning("%s auto: using %s, the CPU kernel did not build: %s", key, native_name, error)
        return "native"
    return "cpu_aot"


def kernel_builds(requested, build):
    """Whether a kernel config value ``requested`` (auto/native/cpu_aot) will run the CPU kernel: not native, and
    ``build()`` (which compiles the library without loading it) succeeds. Quiet: ``resolve_kernel`` warns later."""
    if requested == "native":
        return False
    try:
        build()
    except KernelBuildError:
        return False
    return True


def build_library(source_name, extra_flags=None):
    """Path of the library compiled from ``src/kernels/<source_name>`` (with the compiler flags ``extra_flags()``
    returns, if given), compiling it once; KernelBuildError when it cannot be built. Nothing is loaded, so this
    may run before the device is set up."""
    return compiled_library(source_name, extra_flags() if extra_flags else ())


@functools.cache
def kernel_library(source_name, threads_symbol, extra_flags=None):
    """Path of the library compiled from ``src/kernels/<source_name>`` (with the compiler flags ``extra_flags()``
    returns, if given: src/kernels/onednn.py), its ``threads_symbol`` export called once with this process's
    MindSpore CPU thread count.

    The kernels run on OpenMP (libgomp, loaded with the first library). Its threads busy-wait after a parallel region
    by default, taking a core from the MindSpore operators that run between the kernels: with OMP_WAIT_POLICY=PASSIVE
    (they sleep instead), MobileFaceNet batch 32 trained at 18.5 img/s instead of 12.7 (benchmarks/bench_train.py).
    A policy set in the environment is kept; it takes effect only if libgomp is not loaded yet (PyTorch loads it)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    library = build_library(source_name, extra_flags)
    getattr(ctypes.CDLL(library), threads_symbol)(configured_cpu_threads())
    return library
