"""Read a PyTorch state dict saved in the legacy (pre-1.6, non-zip) serialisation, without PyTorch.

Such a file is five things one after the other: three small pickles (a magic number, the protocol version 1001
and a system-info dict), the state dict pickled with each tensor's storage as a persistent id, a pickle of the
storage keys, then each storage's raw data (an int64 element count, then the elements, little-endian).

A pickle can run arbitrary code when loaded, so every pickle here goes through ``TensorUnpickler``, which admits
only ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the numeric storage types (each mapped to
a NumPy stand-in); any other global stops the load with ``UnsafePickleError`` before anything is called.
"""

import collections
import io
import pickle

import numpy as np

from src.model_utils.safe_pickle import UnsafePickleError

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFormatError(ValueError):
    """A file that is not a legacy PyTorch state dict of plain tensors; the message names the file."""


class _StorageType:
    """Stand-in for ``torch.<X>Storage``: only its element type is used."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class _Storage:
    """A storage named in the state dict, filled from the data that follows the pickles."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel, self.data = key, dtype, numel, None


class _PendingTensor:
    """``_rebuild_tensor_v2``'s arguments, turned into an array once the storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self, name, path):
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride) if n > 0)
        if (
            any(n < 0 for n in self.size)
            or any(s < 0 for s in self.stride)
            or len(self.size) != len(self.stride)
            or self.offset < 0
            or (0 not in self.size and last >= self.storage.numel)
        ):
            raise TorchFormatError(f"{path}: tensor {name!r} lies outside its storage")
        itemsize = self.storage.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise UnsafePickleError("_rebuild_tensor_v2 called without a storage")
    return _PendingTensor(storage, int(storage_offset), size, stride)


def _allowed_globals():
    """(module, name) -> the stand-in to use."""
    return {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        **{("torch", name): _StorageType(dtype) for name, dtype in STORAGE_DTYPES.items()},
    }


class TensorUnpickler(pickle.Unpickler):
    """The unpickler of legacy state dicts: OrderedDicts of plain tensors and nothing else."""

    ALLOWED = _allowed_globals()

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refused global '{module}.{name}'") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(f"unexpected persistent id {pid!r:.80}")
        key = str(pid[2])
        if key not in self.storages:
            self.storages[key] = _Storage(key, pid[1].dtype, int(pid[4]))
        return self.storages[key]


def _load_one(file, storages=None):
    unpickler = TensorUnpickler(file)
    if storages is not None:
        unpickler.storages = storages
    return unpickler.load()


def _read_storage_data(file, storages, keys, path):
    for key in keys:
        if key not in storages:
            raise TorchFormatError(f"{path}: storage {key!r} is listed but no tensor uses it")
        storage = storages[key]
        header = file.read(8)
        if len(header) != 8:
            raise TorchFormatError(f"{path}: truncated before the data of storage {key!r}")
        count = int(np.frombuffer(header, "<i8")[0])
        if count != storage.numel:
            raise TorchFormatError(f"{path}: storage {key!r} holds {count} elements, its tensor says {storage.numel}")
        raw = file.read(count * storage.dtype.itemsize)
        if len(raw) != count * storage.dtype.itemsize:
            raise TorchFormatError(f"{path}: truncated data of storage {key!r}")
        storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))


def read_state_dict(data, path="<bytes>"):
    """The bytes of a legacy ``torch.save(state_dict)`` file -> {name: NumPy array}."""
    if data[:2] == b"PK":
        raise TorchFormatError(
            f"{path}: a zip-format PyTorch file; this reader takes the legacy format of the MTCNN "
            f"weights (re-save with torch.save(..., _use_new_zipfile_serialization=False))"
        )
    file = io.BytesIO(data)
    try:
        magic = _load_one(file)
        if magic != MAGIC:
            raise TorchFormatError(f"{path}: not a legacy PyTorch file (no magic number)")
        if _load_one(file) != PROTOCOL_VERSION:
            raise TorchFormatError(f"{path}: unsupported legacy protocol version")
        info = _load_one(file)
        if not (isinstance(info, dict) and info.get("little_endian")):
            raise TorchFormatError(f"{path}: only little-endian files are supported")
        storages = {}
        state = _load_one(file, storages)
        keys = _load_one(file)
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as err:
        if isinstance(err, TorchFormatError):
            raise
        raise TorchFormatError(f"{path}: not a readable PyTorch state dict ({err})") from None
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise TorchFormatError(f"{path}: expected a state dict of tensors")
    _read_storage_data(file, storages, [str(k) for k in keys], path)
    tensors = {}
    for name, value in state.items():
        if not isinstance(value, _PendingTensor):
            raise TorchFormatError(f"{path}: entry {name!r} is not a tensor")
        tensors[str(name)] = value.array(name, path)
    return tensors
