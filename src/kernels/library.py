"""The kernel libraries: their sources, compiling them all (before the device is set up) and loading one set to
MindSpore's CPU thread count."""

import ctypes
import functools
import os

from src.kernels.build import compiled_library
from src.kernels.onednn import compile_flags
from src.model_utils.device import configured_cpu_threads

# source -> (the export that sets its thread count, the function giving its extra compiler flags, or None)
SOURCES = {
    "conv_onednn.cc": ("ConvSetThreads", compile_flags),
    "depthwise_cpu.cc": ("DepthwiseSetThreads", None),
    "batchnorm_cpu.cc": ("BatchNormSetThreads", None),
    "prelu_cpu.cc": ("PReLUSetThreads", None),
}


def build(source_name):
    """Path of the library compiled from ``src/kernels/<source_name>``, compiling it once; KernelBuildError when it
    cannot be built. Nothing is loaded, so this may run before the device is set up."""
    extra_flags = SOURCES[source_name][1]
    return compiled_library(source_name, extra_flags() if extra_flags else ())


def build_all():
    """Paths of every kernel library, compiled if needed (KernelBuildError at the first that cannot be)."""
    return [build(source_name) for source_name in SOURCES]


@functools.cache
def kernel_library(source_name):
    """Path of the library of ``source_name``, its thread-count export called once with this process's MindSpore
    CPU thread count.

    The kernels run on OpenMP (libgomp, loaded with the first library). Its threads busy-wait after a parallel region
    by default, taking a core from the MindSpore operators that run between the kernels; with OMP_WAIT_POLICY=PASSIVE
    they sleep instead. A policy set in the environment is kept; it takes effect only if libgomp is not loaded yet
    (PyTorch loads it)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    library = build(source_name)
    getattr(ctypes.CDLL(library), SOURCES[source_name][0])(configured_cpu_threads())
    return library
