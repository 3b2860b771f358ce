"""What a MINDIR file says about itself: which MindSpore wrote it and its MindIR version.

A MINDIR is a protobuf ``ModelProto`` (mind_ir.proto): field 2 ``producer_name``, 5 ``model_version`` (the
writer's version, e.g. ``2.10.0``; a model converted by MindSpore Lite 2.0's converter says ``2.0.0``) and 13
``mind_ir_version``. MindSpore 2.10 writes MindIR version 3; MindSpore Lite 2.0, the only Lite release on PyPI,
reads up to version 1, so its C++ runtime needs a model converted with ``tools/to_lite.py``.
"""

import os
from dataclasses import dataclass

LITE_2_0_MAX_MINDIR_VERSION = 1
_FIELDS = {2: "producer", 5: "version", 13: "mindir_version"}


class MindirFormatError(ValueError):
    """The file is not a MINDIR protobuf; the message names it."""


@dataclass
class MindirInfo:
    producer: str
    version: str
    mindir_version: int
    # False when a field runs past the end of the file: the file was cut short (a copy or download that stopped).
    complete: bool = True

    def describe(self):
        return f"MindIR version {self.mindir_version}, written by {self.producer} {self.version}"


def _varint(data, pos):
    value = shift = 0
    while True:
        if pos >= len(data):
            raise IndexError(pos)
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def read_mindir_info(path, head=None):
    """Walk the top-level protobuf fields of ``path`` (skipping the graph) -> ``MindirInfo``; with ``head``, of its
    first ``head`` bytes only (enough for the producer)."""
    with open(path, "rb") as f:
        data = f.read(head if head is not None else -1)
    found, pos = {}, 0
    try:
        while pos < len(data):
            tag, pos = _varint(data, pos)
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                value, pos = _varint(data, pos)
            elif wire == 2:
                size, pos = _varint(data, pos)
                value, pos = data[pos : pos + size], pos + size
            elif wire in (1, 5):
                value, pos = None, pos + (8 if wire == 1 else 4)
            else:
                raise ValueError(f"wire type {wire}")
            if number in _FIELDS and number not in found:
                found[number] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    except (IndexError, ValueError) as err:
        raise MindirFormatError(f"{path} is not a MINDIR file (unreadable protobuf at byte {pos}: {err})") from err
    if 2 not in found:
        raise MindirFormatError(f"{path} is not a MINDIR file (no producer name)")
    return MindirInfo(found[2], found.get(5, "?"), int(found.get(13, 0)), pos <= len(data))


def is_mindir(path):
    """Whether ``path`` holds a MINDIR, by its content (a checkpoint renamed ``.mindir`` is not one, a MINDIR renamed
    ``.ckpt`` is): a MINDIR begins with its IR version and producer name, a checkpoint with a parameter."""
    if not os.path.isfile(path):
        return False  # reported as missing where it is loaded
    try:
        read_mindir_info(path, head=256)
    except MindirFormatError:
        return False
    return True
