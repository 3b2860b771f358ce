"""The MTCNN weights: fetched, converted to a MindSpore checkpoint once, cached.

The weights are the original MTCNN networks (Zhang et al. 2016) as converted to PyTorch by facenet-pytorch
(Tim Esler, MIT licence) and shipped inside its PyPI wheel ``facenet-pytorch==2.6.0`` as
``facenet_pytorch/data/{pnet,rnet,onet}.pt``. On first use the wheel is fetched with
``pip download --no-deps`` (never installed: it pins old torch/torchvision), the three files are read without
PyTorch through a restricted unpickler (``src/detect/torch_legacy.py``), checked against their SHA-256, converted
and saved as ``<cache>/mtcnn_facenet-pytorch-2.6.0.ckpt``; later runs load that checkpoint.

Where the weights come from, first match wins:
  1. the ``weights`` argument (``FaceDetector(weights=...)``, ``--detector_weights``), else
  2. ``$FACEREC_MTCNN_WEIGHTS``,
  each a converted ``.ckpt``, the wheel ``.whl``, or a folder holding the wheel or ``pnet.pt rnet.pt onet.pt``;
  3. the cached checkpoint in ``$FACEREC_CACHE/mtcnn`` (default ``~/.cache/facerec_ms/mtcnn``);
  4. a download from the package index pip is configured for.
"""

import glob
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile

import mindspore as ms
import numpy as np
from mindspore import nn

from src.detect.nets import MTCNNNets
from src.detect.torch_legacy import read_state_dict
from src.model_utils.pip_errors import INDEX_UNREACHABLE
from src.network.weights import CheckpointError, read_checkpoint

PACKAGE = "facenet-pytorch==2.6.0"
WHEEL_GLOB = "facenet_pytorch-2.6.0-*.whl"
CHECKPOINT_NAME = "mtcnn_facenet-pytorch-2.6.0.ckpt"
WEIGHTS_ENV = "FACEREC_MTCNN_WEIGHTS"
NETS = ("pnet", "rnet", "onet")
PT_SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
# Words in pip's output when the index cannot be reached, or serves no such wheel (an offline mirror).
NO_NETWORK = (*INDEX_UNREACHABLE, "Could not fetch URL", "No matching distribution found")
LOG = logging.getLogger("facerec.detect")


class WeightsError(RuntimeError):
    """The MTCNN weights cannot be found, fetched or read; the message says what to do."""


def cache_dir():
    """``$FACEREC_CACHE/mtcnn``, default ``~/.cache/facerec_ms/mtcnn``."""
    root = os.environ.get("FACEREC_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "facerec_ms")
    return os.path.join(root, "mtcnn")


def _checked(name, data, origin):
    digest = hashlib.sha256(data).hexdigest()
    if digest != PT_SHA256[name]:
        raise WeightsError(
            f"{origin}: {name}.pt has SHA-256 {digest}, expected {PT_SHA256[name]} (the file of "
            f"{PACKAGE}); point {WEIGHTS_ENV} at that wheel or its data files"
        )
    return read_state_dict(data, origin)


def read_wheel(path):
    """{net: state dict} from the facenet-pytorch wheel at ``path``."""
    try:
        with zipfile.ZipFile(path) as wheel:
            return {
                name: _checked(name, wheel.read(f"facenet_pytorch/data/{name}.pt"), f"{path}:{name}.pt")
                for name in NETS
            }
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        raise WeightsError(f"{path}: not a readable {PACKAGE} wheel ({err})") from None


def read_pt_folder(folder):
    """{net: state dict} from ``folder/{pnet,rnet,onet}.pt``."""
    state = {}
    for name in NETS:
        path = os.path.join(folder, f"{name}.pt")
        try:
            with open(path, "rb") as f:
                state[name] = _checked(name, f.read(), path)
        except OSError as err:
            raise WeightsError(f"cannot read {path}: {err.strerror}") from None
    return state


def torch_to_mindspore(state_dicts):
    """{net: torch state dict} -> {MindSpore parameter name: array} for ``MTCNNNets``.

    PReLU slopes become the cell's parameter; each dense layer fed by a convolution gets its input columns
    reordered from the (W, H, C) flattening the weights were trained with to NCHW's (C, H, W).
    """
    nets = MTCNNNets()
    params = {}
    for cell_name, cell in nets.cells_and_names():
        net, _, layer = cell_name.partition(".")
        if not layer or "." in layer:
            continue
        source = state_dicts[net]
        if isinstance(cell, nn.PReLU):
            ((param_name, param),) = cell.parameters_and_names()
            params[f"{cell_name}.{param_name.split('.')[-1]}"] = source[f"{layer}.weight"].reshape(param.shape)
            continue
        if not isinstance(cell, (nn.Conv2d, nn.Dense)):
            continue
        weight = source[f"{layer}.weight"]
        if isinstance(cell, nn.Dense) and layer in ("dense4", "dense5"):
            channels = {"dense4": 64, "dense5": 128}[layer]
            side = round((weight.shape[1] / channels) ** 0.5)
            weight = weight.reshape(-1, side, side, channels).transpose(0, 3, 2, 1).reshape(weight.shape[0], -1)
        params[f"{cell_name}.weight"] = weight
        params[f"{cell_name}.bias"] = source[f"{layer}.bias"]
    return params


def load_params(nets, params, origin):
    """Copy ``params`` into ``nets``; every parameter must be given with its shape."""
    own = dict(nets.parameters_and_names())
    missing = sorted(set(own) - set(params))
    unknown = sorted(set(params) - set(own))
    if missing or unknown:
        raise WeightsError(f"{origin}: not an MTCNN checkpoint (missing {missing[:3]}, unexpected {unknown[:3]})")
    for name, value in params.items():
        value = np.asarray(value, np.float32)
        if value.shape != own[name].shape:
            raise WeightsError(f"{origin}: {name} has shape {value.shape}, expected {own[name].shape}")
        own[name].set_data(ms.Tensor(value))
    return nets


def save_checkpoint(state_dicts, path):
    """Convert ``state_dicts`` and write the checkpoint to ``path`` atomically."""
    nets = load_params(MTCNNNets(), torch_to_mindspore(state_dicts), "converted weights")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=".mtcnn-", suffix=".ckpt", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    os.remove(partial)
    ms.save_checkpoint(nets, partial, crc_check=True)
    os.replace(partial, path)
    return path


def download_wheel(folder):
    """``pip download --no-deps facenet-pytorch==2.6.0`` into ``folder``; returns the wheel's path."""
    LOG.info("fetching the MTCNN weights: pip download --no-deps %s", PACKAGE)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--quiet",
        PACKAGE,
        "-d",
        folder,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = glob.glob(os.path.join(folder, WHEEL_GLOB))
    if result.returncode == 0 and wheels:
        return wheels[0]
    output = result.stdout + result.stderr
    reason = (
        "the package index cannot be reached"
        if any(word in output for word in NO_NETWORK)
        else f"pip failed: {output.strip().splitlines()[-1] if output.strip() else result.returncode}"
    )
    raise WeightsError(
        f"cannot fetch the MTCNN weights ({reason}). On a machine with access run "
        f"`pip download --no-deps {PACKAGE} -d DIR` and set {WEIGHTS_ENV}=DIR/<the .whl> (or pass "
        f"--detector_weights); the weights are converted once into {cache_dir()}"
    )


def _state_from(source):
    if os.path.isfile(source) and source.endswith(".whl"):
        return read_wheel(source)
    if os.path.isdir(source):
        wheels = glob.glob(os.path.join(source, WHEEL_GLOB))
        return read_wheel(wheels[0]) if wheels else read_pt_folder(source)
    raise WeightsError(
        f"MTCNN weights not found at {source}: give a converted .ckpt, the {PACKAGE} wheel, or a "
        f"folder holding the wheel or pnet.pt, rnet.pt, onet.pt"
    )


def resolve_weights(weights=None):
    """Path of the MindSpore MTCNN checkpoint to load, converting (and fetching) it into the cache if needed."""
    source = weights or os.environ.get(WEIGHTS_ENV)
    if source and source.endswith(".ckpt"):
        if not os.path.isfile(source):
            raise WeightsError(f"MTCNN checkpoint not found: {source}")
        return source
    target = os.path.join(cache_dir(), CHECKPOINT_NAME)
    if source:
        state = _state_from(source)
    elif os.path.isfile(target):
        return target
    else:
        os.makedirs(cache_dir(), exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir()) as folder:
            state = read_wheel(download_wheel(folder))
    if not os.path.isfile(target):
        save_checkpoint(state, target)
        LOG.info("MTCNN weights converted to %s", target)
    return target


def load_nets(weights=None):
    """``MTCNNNets`` with the MTCNN weights (see the module doc for where they come from)."""
    path = resolve_weights(weights)
    try:
        params = {name: param.asnumpy() for name, param in read_checkpoint(path).items()}
    except (CheckpointError, OSError) as err:
        raise WeightsError(f"cannot read the MTCNN checkpoint {path}: {err}") from None
    nets = load_params(MTCNNNets(), params, path)
    nets.set_train(False)
    return nets
