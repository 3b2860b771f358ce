"""Compile a C++ kernel source of this folder into a shared library once, and cache it.

The library goes to ``$FACEREC_KERNEL_CACHE`` (default ``~/.cache/facerec_ms/kernels``) under a name carrying
the SHA-256 of the source and of this folder's headers (``kernel_threads.h``, ``conv_geometry.h``), so an edited
source or header is rebuilt and concurrent processes (distributed workers) never see a half-written file (compiled
to a temporary name, then renamed). The compiler is ``$CXX`` (default ``g++``); flags are portable (no
``-march=native``: a cache directory may be shared by machines with other CPUs). A kernel that needs more
(include paths, a library to link: onednn.py) passes them as ``extra_flags``, which also go into the name.

A failure is remembered for the process: a second call raises the same error without running the compiler again.

    python -m src.kernels        # compile every kernel ahead of a run (otherwise: on first use)
"""

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile

KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
CXX_FLAGS = ("-O3", "-std=c++17", "-fopenmp", "-shared", "-fPIC")
LOG = logging.getLogger("facerec.kernels")
_failures = {}  # (compiler, source, flags, cache) -> the KernelBuildError of this process's attempt


class KernelBuildError(RuntimeError):
    """The kernel library could not be compiled (no compiler, or the compiler failed)."""


def cache_dir():
    return os.environ.get("FACEREC_KERNEL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "facerec_ms", "kernels"
    )


def compiled_library(source_name, extra_flags=()):
    """Path of the shared library built from ``src/kernels/<source_name>`` (with ``extra_flags`` after the source),
    compiling it if not cached; KernelBuildError (the same one on every later call) when it cannot be built."""
    key = (os.environ.get("CXX", "g++"), os.path.join(KERNEL_DIR, source_name), tuple(extra_flags), cache_dir())
    if key in _failures:
        raise _failures[key]
    try:
        return _compile(source_name, tuple(extra_flags))
    except KernelBuildError as error:
        _failures[key] = error
        raise


def _compile(source_name, extra_flags):
    source = os.path.join(KERNEL_DIR, source_name)
    digest = hashlib.sha256(" ".join(CXX_FLAGS + tuple(extra_flags)).encode())
    headers = sorted(name for name in os.listdir(KERNEL_DIR) if name.endswith(".h"))
    for path in [source] + [os.path.join(KERNEL_DIR, name) for name in headers]:
        with open(path, "rb") as f:
            digest.update(f.read())
    stem = os.path.splitext(source_name)[0]
    target = os.path.join(cache_dir(), f"{stem}-{digest.hexdigest()[:16]}.so")
    if os.path.isfile(target):
        return target
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise KernelBuildError(
            f"no C++ compiler '{compiler}' on PATH to build {source_name} (set CXX, install "
            "g++, or set cpu_kernels: off)"
        )
    os.makedirs(cache_dir(), exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{stem}-", suffix=".so", dir=cache_dir())
    os.close(fd)
    try:
        result = subprocess.run(
            [compiler, *CXX_FLAGS, "-o", partial, source, *extra_flags], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise KernelBuildError(
                f"{compiler} failed to build {source_name} (exit {result.returncode}):\n{result.stderr.strip()}"
            )
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    LOG.info("built %s -> %s", source_name, target)
    return target
