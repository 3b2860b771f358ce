"""Reading checkpoints, and loading backbone weights from a training checkpoint (parameters prefixed
``backbone.``) or from a bare backbone checkpoint (e.g. one converted from PyTorch).

Every read goes through ``read_checkpoint``: a file with MindSpore's CRC32 trailer (what train.py and
tools/convert_torch.py write) is checked against it, so a damaged file is refused, never used; a file without
one (another program's) must at least parse. A truncated file has lost its trailer and does not parse.
"""

import binascii
import os
import shutil
import tempfile
from contextlib import contextmanager

import mindspore as ms
import numpy as np
from mindspore.nn.utils import no_init_parameters

from src.network.registry import BACKBONES

# A checkpoint set aside by a rollback after non-finite steps (src/train/checkpoint.py): never a model to load.
DIVERGED_SUFFIX = ".diverged.ckpt"

PREFIX = "backbone."
CRC_MARK = b"crc_num"
CRC_TRAILER = len(CRC_MARK) + 10


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read; the message names the file."""


class DamagedFileError(CheckpointError):
    """A model file (checkpoint or MINDIR) that is truncated or damaged: its CRC fails or it does not parse."""


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the network; the message names the parameter."""


@contextmanager
def named(path, extension):
    """``path``, or a link to it whose name ends with ``extension``: MindSpore reads a checkpoint only by a
    ``.ckpt`` name and a MINDIR by a ``.mindir`` one, whatever the file holds."""
    if path.endswith(extension):
        yield path
        return
    folder = tempfile.mkdtemp()
    try:
        link = os.path.join(folder, "model" + extension)
        os.symlink(os.path.abspath(path), link)
        yield link
    finally:
        shutil.rmtree(folder)


def has_crc_trailer(path):
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(f.tell() - CRC_TRAILER, 0))
        trailer = f.read()
    return len(trailer) == CRC_TRAILER and trailer.startswith(CRC_MARK)


def crc_matches(path):
    """Whether the CRC32 of a checkpoint with a trailer (``has_crc_trailer``) matches its content, as MindSpore's
    ``load_checkpoint(crc_check=True)`` computes it (checked here, so a mismatch does not also get MindSpore's
    misleading "may not have permission to read it" log line)."""
    with open(path, "rb") as f:
        data = f.read()
    return binascii.crc32(data[:-CRC_TRAILER]) == int.from_bytes(data[-(CRC_TRAILER - len(CRC_MARK)) :], "big")


def read_checkpoint(path, require_crc=False):
    """{name: Parameter or str} of the checkpoint ``path``, its CRC checked when it has one (``require_crc``: it
    must, as every checkpoint train.py writes does); else ``CheckpointError`` naming the file and saying whether it
    is damaged (a failed CRC, an unreadable file: ``DamagedFileError``) or not one of this project's."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    crc = has_crc_trailer(path)
    damaged = (
        f"{path}: truncated or damaged checkpoint (%s; {os.path.getsize(path)} bytes): copy it again or use another "
        f"checkpoint"
    )
    if crc and not crc_matches(path):
        raise DamagedFileError(damaged % "its CRC does not match its content")
    try:
        with named(path, ".ckpt") as name:
            params = ms.load_checkpoint(name)  # MindSpore leaves the trailer out
    except ValueError as err:
        raise DamagedFileError(
            damaged % ("it does not parse" if crc else "no CRC trailer at its end, and it does not parse")
        ) from err
    if require_crc and not crc:
        raise CheckpointError(
            f"{path} is a checkpoint without a CRC trailer: not one train.py wrote (another program's, e.g. the "
            f"MindSpore 1.x model zoo's); --resume continues only runs of this project"
        )
    return params


def backbone_parameters(checkpoint_path):
    """{name: Parameter} of the backbone stored in ``checkpoint_path``."""
    params = read_checkpoint(checkpoint_path)
    if any(name.startswith(PREFIX) for name in params):
        return {name[len(PREFIX) :]: p for name, p in params.items() if name.startswith(PREFIX)}
    return params


def check_parameters(expected, params, source, hint="a checkpoint of another backbone?"):
    """``params`` ({name: value}) must hold exactly the names of ``expected`` ({name: shape}) with those shapes;
    else ``CheckpointMismatchError`` naming the first offending parameter and ``source``. A checkpoint whose names
    are mostly not the network's and the other way round (another code base's layer names) is named as such."""
    shared = len(set(expected) & set(params))
    if expected and params and shared < len(expected) / 2 and shared < len(params) / 2:
        raise CheckpointMismatchError(
            f"{source}: {shared} of the network's {len(expected)} parameter names are in it (it has "
            f"{', '.join(sorted(params)[:3])}, ...; the network has {', '.join(sorted(expected)[:3])}, ...): it was "
            f"written by another program, such as the MindSpore 1.x model zoo's sphereface, whose layers are named "
            f"differently; train here or convert it (tools/convert_torch.py converts PyTorch checkpoints)"
        )
    for name, shape in expected.items():
        if name not in params:
            raise CheckpointMismatchError(f"{source}: no value for parameter '{name}' ({hint})")
        if tuple(params[name].shape) != tuple(shape):
            raise CheckpointMismatchError(
                f"{source}: parameter '{name}' has shape {tuple(params[name].shape)}, "
                f"the network expects {tuple(shape)} ({hint})"
            )
    extra = sorted(set(params) - set(expected))
    if extra:
        raise CheckpointMismatchError(
            f"{source}: parameter '{extra[0]}' is not in the network ({len(extra)} unexpected in all)"
        )


def check_finite(params, source, checked=True):
    """Every value of ``params`` ({name: Parameter}) finite, else ``CheckpointMismatchError`` naming the first
    parameter that is not: the checkpoint of a run that diverged, when its CRC was ``checked`` (a file without one
    may as well be damaged)."""
    for name, value in params.items():
        array = value.asnumpy()
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            count = int(array.size - np.isfinite(array).sum())
            cause = (
                "the run that wrote it diverged; use an earlier checkpoint"
                if checked
                else "the run that wrote it diverged, or the file (without a CRC to check it) is damaged"
            )
            raise CheckpointMismatchError(
                f"{source}: parameter '{name}' holds {count} non-finite value(s) (NaN or Inf): {cause}"
            )


def held_backbone(params):
    """The registered backbone whose parameter names are those of ``params`` ({name: value}), or None. Built
    without initialising their weights, so trying them all takes seconds."""
    names = set(params)
    with no_init_parameters():
        for name in BACKBONES.names():
            if {p.name for p in BACKBONES.build(name).get_parameters()} == names:
                return name
    return None


def load_backbone_weights(backbone, checkpoint_path, name=None):
    """Fill every parameter of ``backbone`` (the registered backbone ``name``) from the checkpoint; a checkpoint of
    another registered backbone raises ``CheckpointMismatchError`` naming both, a missing, extra or mis-shaped
    parameter one naming it."""
    params = backbone_parameters(checkpoint_path)
    expected = {p.name: p.shape for p in backbone.get_parameters()}
    if name is not None and set(params) != set(expected):
        held = held_backbone(params)
        if held is not None and held != name:
            raise CheckpointMismatchError(
                f"{checkpoint_path} holds a {held} backbone, the config builds {name}: evaluate it with "
                f"--backbone={held} (and the embedding_size, image_size and backbone_width it was trained with)"
            )
    check_parameters(expected, params, checkpoint_path)
    check_finite(params, checkpoint_path, has_crc_trailer(checkpoint_path))
    ms.load_param_into_net(backbone, params, strict_load=True)
    return backbone
