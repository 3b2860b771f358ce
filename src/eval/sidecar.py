"""The sidecar ``<model>.json`` export.py writes beside an exported model: everything inference needs to run the
model without a config (backbone name, input shape and size, normalisation, embedding size, fusion, and a
threshold with its source when ``--threshold_from`` gave one), under a format version.

``format_version`` is ``"MAJOR.MINOR"``. A reader takes every minor version of the major versions it knows (later
minors only add fields, which it ignores) and refuses a newer major. A sidecar without ``format_version`` (written
before there was one) is read as version 1.0 when it has the required fields. A sidecar without ``fusion`` takes
its threshold's fusion, else ``concat`` (the config schema's default, which export.py used then).
"""

import json
import os
import re

from src.data.image_io import INPUT_RECORD

FORMAT_VERSION = "1.0"
KNOWN_MAJOR = 1
REQUIRED = ("backbone", "input_shape", "image_size", "embedding_size", *INPUT_RECORD)
DEFAULT_FUSION = "concat"


class SidecarError(ValueError):
    """A sidecar cannot be read or lacks what inference needs; the message names the file and the field."""


def sidecar_path(model_path):
    """``<model>.json``, the sidecar of the exported file ``model_path``."""
    return os.fspath(model_path) + ".json"


def versioned(record):
    """``record`` with this package's ``format_version`` first."""
    return {"format_version": FORMAT_VERSION, **record}


def format_major(record, path):
    """The major version of a sidecar record (1 without ``format_version``); a newer one than known is refused."""
    version = record.get("format_version", "1.0")
    found = re.fullmatch(r"(\d+)\.(\d+)", str(version))
    if found is None:
        raise SidecarError(f"{path}: field 'format_version' is {version!r}, not 'MAJOR.MINOR'")
    major = int(found.group(1))
    if major > KNOWN_MAJOR:
        raise SidecarError(
            f"{path}: field 'format_version' is {version}, newer than this package reads ({KNOWN_MAJOR}.x): "
            "update the package, or export the model again with this one"
        )
    return major


def read_record(model_path):
    """The sidecar of ``model_path`` as a dict, its version checked, or None when there is none."""
    path = sidecar_path(model_path)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except json.JSONDecodeError as err:
        raise SidecarError(f"{path}: not a JSON file ({err})") from None
    if not isinstance(record, dict):
        raise SidecarError(f"{path}: the top level must be an object of field: value")
    format_major(record, path)
    return record


def _check_fields(record, path):
    for field in REQUIRED:
        if field not in record:
            raise SidecarError(f"{path}: field '{field}' is missing (inference without a config needs it)")
    for field, value in INPUT_RECORD.items():
        if record[field] != value:
            raise SidecarError(f"{path}: field '{field}' is {record[field]!r}; this package feeds models {value!r}")
    size, shape = record["image_size"], record["input_shape"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise SidecarError(f"{path}: field 'image_size' is {size!r}, not [height, width]")
    if not (isinstance(shape, list) and len(shape) == 4 and list(shape[2:]) == size):
        raise SidecarError(f"{path}: field 'input_shape' is {shape!r}, not [batch, 3, {size[0]}, {size[1]}]")
    if not isinstance(record["embedding_size"], int) or record["embedding_size"] < 1:
        raise SidecarError(f"{path}: field 'embedding_size' is {record['embedding_size']!r}, not a positive integer")


def sidecar_fusion(record):
    """The fusion the exported model is used with: ``fusion``, else its threshold's, else ``concat``."""
    return record.get("fusion") or (record.get("threshold") or {}).get("fusion") or DEFAULT_FUSION


def read_sidecar(model_path):
    """The sidecar of ``model_path``, checked to hold what inference needs (``SidecarError`` naming the file and
    the field otherwise), with ``fusion`` resolved."""
    path = sidecar_path(model_path)
    record = read_record(model_path)
    if record is None:
        raise SidecarError(
            f"{path}: not found; an exported model runs without a config only with the sidecar export.py writes "
            "beside it (or give --config_path)"
        )
    _check_fields(record, path)
    return {**record, "fusion": sidecar_fusion(record)}
