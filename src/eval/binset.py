"""InsightFace ``.bin`` verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ...).

A ``.bin`` is a pickle of ``(bins, issame_list)``: 2N encoded images (pair i is images 2i and 2i+1, aligned to
112x112 with the ArcFace template) and N booleans. Its 10 folds are contiguous (insightface's ``KFold`` without
shuffling). A pickle can run arbitrary code when loaded, so it is read with ``SafeUnpickler``, which admits only
bytes, lists, tuples, bools, ints and NumPy arrays (and NumPy scalars): any other global the file asks for stops
the load with ``UnsafePickleError`` before anything is called.
"""

import importlib
import io
import os
import pickle

import numpy as np

from src.eval.pairs import PairSet, contiguous_folds
from src.model_utils.safe_pickle import UnsafePickleError as PickleRefused


class BinFormatError(ValueError):
    """A ``.bin`` set that cannot be read or has the wrong structure; the message names the file."""


class UnsafePickleError(BinFormatError, PickleRefused):
    """The pickle asks for a global outside the allowed types (it may be crafted to execute code)."""


def _numpy_attr(submodule, name):
    """``numpy._core.<submodule>.<name>`` (NumPy 2) or ``numpy.core.<submodule>.<name>`` (NumPy 1)."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {submodule}.{name}")


def _plain_dtype(*args):
    """``numpy.dtype`` that refuses object dtypes (an object array would hold arbitrary Python objects)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise UnsafePickleError(f"object dtype {dtype} is not allowed")
    return dtype


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles of ``bytes`` use it (str -> bytes, latin1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode is allowed only as bytes(str, 'latin1'), got {encoding!r}")
    return text.encode("latin1")


def _allowed_globals():
    """(module, name) -> the object to use: what NumPy arrays, NumPy scalars and protocol-2 bytes pickle as."""
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _plain_dtype, ("_codecs", "encode"): _latin1_encode}
    for package in ("numpy._core", "numpy.core"):
        table[(f"{package}.multiarray", "_reconstruct")] = _numpy_attr("multiarray", "_reconstruct")
        table[(f"{package}.multiarray", "scalar")] = _numpy_attr("multiarray", "scalar")
        table[(f"{package}.numeric", "_frombuffer")] = _numpy_attr("numeric", "_frombuffer")
    return table


class SafeUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` admits only the globals of ``_allowed_globals``; builtin containers,
    bytes, bools and ints need no global and load as usual. Python 2 strings load as bytes."""

    ALLOWED = _allowed_globals()

    def __init__(self, file):
        super().__init__(file, encoding="bytes")

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refused global '{module}.{name}'") from None


def safe_load(data):
    """Unpickle ``data`` with ``SafeUnpickler``."""
    return SafeUnpickler(io.BytesIO(data)).load()


def _check_no_objects(value, path):
    """Reject NumPy arrays of object dtype anywhere in the loaded structure."""
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        raise UnsafePickleError(f"{path}: an object array is not allowed")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_no_objects(item, path)


def _encoded_bytes(item, index, path):
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if isinstance(item, np.ndarray) and item.dtype == np.uint8 and item.ndim == 1:
        return item.tobytes()
    raise BinFormatError(f"{path}: image #{index} is a {type(item).__name__}, expected encoded image bytes")


def _issame_flags(issame, count, path):
    flags = np.asarray(issame)
    if flags.ndim != 1 or flags.dtype.kind not in "bi" or not np.isin(flags, (0, 1)).all():
        raise BinFormatError(f"{path}: the same/different list must hold booleans")
    if len(flags) * 2 != count:
        raise BinFormatError(f"{path}: {count} images for {len(flags)} pairs (expected {2 * len(flags)})")
    return flags.astype(bool)


def read_bin(path):
    """Read an insightface ``.bin`` set into a ``PairSet`` that carries its encoded images."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise BinFormatError(f"cannot read {path}: {err.strerror}") from err
    try:
        loaded = safe_load(data)
    except UnsafePickleError as err:
        raise UnsafePickleError(
            f"{path}: refused to load: {err}. A .bin set may contain only bytes, lists, "
            f"tuples, bools, ints and NumPy arrays; this file asks for more and may be "
            f"crafted to execute code"
        ) from None
    except Exception as err:  # noqa: BLE001 (any unpickling failure means the file is not a .bin set)
        raise BinFormatError(
            f"{path}: not a readable .bin set (a pickle of (images, issame)): {type(err).__name__}: {err}"
        ) from err
    _check_no_objects(loaded, path)
    if not isinstance(loaded, (tuple, list)) or len(loaded) != 2:
        raise BinFormatError(f"{path}: expected a pickled pair (images, issame), got {type(loaded).__name__}")
    bins, issame = loaded
    if not isinstance(bins, (list, tuple)):
        raise BinFormatError(f"{path}: the images must be a list, got {type(bins).__name__}")
    encoded = [_encoded_bytes(item, i, path) for i, item in enumerate(bins)]
    flags = _issame_flags(issame, len(encoded), path)
    name = os.path.basename(path)
    count = len(flags)
    return PairSet(
        path,
        "",
        [f"{name}#{i}" for i in range(2 * count)],
        [f"{path}: image #{i} (pair {i // 2 + 1})" for i in range(2 * count)],
        np.arange(0, 2 * count, 2),
        np.arange(1, 2 * count, 2),
        flags,
        contiguous_folds(count),
        encoded,
    )
