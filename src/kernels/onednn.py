"""What a kernel that calls oneDNN (src/kernels/conv_onednn.cc) is compiled with: MindSpore's own oneDNN library and
the oneDNN API headers.

The library is the ``libdnnl.so.3`` MindSpore ships (oneDNN 3.10, THREADPOOL CPU runtime), linked by path with an
rpath, so the kernels run the very oneDNN MindSpore loads into the process. MindSpore ships no headers: they come
from Intel's ``onednn-devel`` wheel on PyPI, fetched once with ``pip download`` into the project's cache
(``$FACEREC_CACHE/onednn-devel-<version>``, default ``~/.cache/facerec_ms``, where the MTCNN weights go too; not the
kernel cache, which tests redirect per session) and never part of the repository. PyPI has
no wheel of oneDNN 3.10; ``2025.3.0`` holds 3.9.1's, and oneDNN keeps its API and ABI backward compatible within a
major version, so code compiled against older 3.x headers runs with the newer 3.x library (the reverse, newer
headers than the library, is not promised). The wheel's ``dnnl_config.h`` describes a SYCL build;
src/kernels/onednn_config.h replaces it.
"""

import glob
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from src.kernels.build import KernelBuildError

ONEDNN_DEVEL = "2025.3.0"  # oneDNN 3.9.1's headers
HEADER_PREFIX = "data/include/oneapi/dnnl/"  # inside the wheel's onednn_devel-<version>.data folder
LOG = logging.getLogger("facerec.kernels")


def mindspore_library():
    """Path of the oneDNN library MindSpore loads (``mindspore/lib/libdnnl.so.3``)."""
    import mindspore

    path = os.path.join(os.path.dirname(mindspore.__file__), "lib", "libdnnl.so.3")
    if not os.path.isfile(path):
        raise KernelBuildError(f"MindSpore has no oneDNN library at {path}")
    return path


def _extract_headers(wheel, include):
    """The wheel's ``oneapi/dnnl`` headers into ``include/oneapi/dnnl``."""
    target = os.path.join(include, "oneapi", "dnnl")
    os.makedirs(target)
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if HEADER_PREFIX in m and not m.endswith("/")]
        for member in members:
            with archive.open(member) as src, open(os.path.join(target, os.path.basename(member)), "wb") as dst:
                shutil.copyfileobj(src, dst)
    if not os.path.isfile(os.path.join(target, "dnnl.hpp")):
        raise KernelBuildError(f"{os.path.basename(wheel)} has no oneDNN headers under {HEADER_PREFIX}")


def header_dir():
    """The include directory of the onednn-devel headers, downloaded on first use; KernelBuildError when they
    cannot be fetched (no network, no pip)."""
    cache = os.environ.get("FACEREC_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "facerec_ms")
    root = os.path.join(cache, f"onednn-devel-{ONEDNN_DEVEL}")
    include = os.path.join(root, "include")
    if os.path.isfile(os.path.join(include, "oneapi", "dnnl", "dnnl.hpp")):
        return include
    os.makedirs(root, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root) as work:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", f"onednn-devel=={ONEDNN_DEVEL}"]
        LOG.info("fetching the oneDNN headers: %s", " ".join(command[1:]))
        try:
            result = subprocess.run([*command, "-d", work], capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise KernelBuildError(
                f"could not fetch the oneDNN headers (onednn-devel=={ONEDNN_DEVEL}): {error}"
            ) from error
        wheels = glob.glob(os.path.join(work, "*.whl"))
        if result.returncode != 0 or not wheels:
            raise KernelBuildError(
                f"could not fetch the oneDNN headers (onednn-devel=={ONEDNN_DEVEL}; pip download exit "
                f"{result.returncode}): {result.stderr.strip()[-500:]}"
            )
        staged = os.path.join(work, "include")
        _extract_headers(wheels[0], staged)
        try:
            os.replace(staged, include)  # atomic: a concurrent process sees all headers or none
        except OSError:
            if not os.path.isdir(include):  # not another process having put them there first
                raise
    return include


def compile_flags():
    """g++ flags after the source for a kernel that calls oneDNN: the headers' include path, MindSpore's
    libdnnl.so.3 and an rpath to its folder."""
    library = mindspore_library()
    return ("-I", header_dir(), library, f"-Wl,-rpath,{os.path.dirname(library)}")
