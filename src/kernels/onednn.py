"""What a kernel that calls oneDNN (conv_onednn.cc) is compiled with: MindSpore's own oneDNN library and the oneDNN
API headers vendored in third_party/onednn.

The library is the ``libdnnl.so.3`` MindSpore ships (oneDNN 3.10, THREADPOOL CPU runtime), linked by path with an
rpath, so the kernel runs the very oneDNN MindSpore loads into the process. MindSpore ships no headers: those of
third_party/onednn are oneDNN 3.9.1's (Apache-2.0, see its README.md), and oneDNN keeps its API and ABI backward
compatible within a major version, so code compiled against them runs with the 3.10 library.
"""

import os

from src.kernels.build import KernelBuildError

INCLUDE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "third_party", "onednn", "include")


def mindspore_library():
    """Path of the oneDNN library MindSpore loads (``mindspore/lib/libdnnl.so.3``)."""
    import mindspore

    path = os.path.join(os.path.dirname(mindspore.__file__), "lib", "libdnnl.so.3")
    if not os.path.isfile(path):
        raise KernelBuildError(f"MindSpore has no oneDNN library at {path}")
    return path


def compile_flags():
    """g++ flags after the source for a kernel that calls oneDNN: the vendored headers' include path, MindSpore's
    libdnnl.so.3 and an rpath to its folder."""
    if not os.path.isfile(os.path.join(INCLUDE_DIR, "oneapi", "dnnl", "dnnl.hpp")):
        raise KernelBuildError(f"the oneDNN headers are missing from {INCLUDE_DIR}")
    library = mindspore_library()
    return ("-I", INCLUDE_DIR, library, f"-Wl,-rpath,{os.path.dirname(library)}")
