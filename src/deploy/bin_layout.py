"""The file layout of the inference harness (ascend310_infer/, tools/mindir_infer.py).

Inputs: ``<input_dir>/index.txt`` lists one file name per line, relative to ``<input_dir>`` (surrounding
whitespace trimmed, blank lines and ``#`` comments skipped, no absolute paths or ``..``); each named file is one
image, raw little-endian float32 C x H x W without a header. Outputs: ``<output_dir>/<name>``, the image's float32
embedding under the same relative name.
"""

import os

import numpy as np

from src.data.text_lines import line_failed, text_lines

INDEX_FILE = "index.txt"


class BinLayoutError(ValueError):
    """A malformed index or a missing / mis-sized input or output file; the message names the file."""


def write_array(path, array):
    """Write ``array`` as raw float32 to ``path``, creating its folder."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    np.ascontiguousarray(array, np.float32).tofile(path)


def write_index(folder, names, comment=None):
    """Write ``<folder>/index.txt`` listing ``names`` (after an optional ``# comment`` line)."""
    lines = ([f"# {comment}"] if comment else []) + list(names)
    with open(os.path.join(folder, INDEX_FILE), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def write_arrays(folder, names, arrays, comment=None):
    """Write each of ``arrays`` as ``<folder>/<name>`` and the index listing ``names``."""
    for name, array in zip(names, arrays):
        write_array(os.path.join(folder, name), array)
    write_index(folder, names, comment)


def read_index(index_file):
    """The input names an index file lists, in order (the rules of the module docstring)."""
    if not os.path.isfile(index_file):
        raise BinLayoutError(f"index file not found: {index_file}")
    names = []
    for number, name in text_lines(index_file, BinLayoutError, comments=True):
        if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
            line_failed(index_file, number, f"'{name}' must be a relative path without '..'", BinLayoutError)
        names.append(name)
    if not names:
        raise BinLayoutError(f"index file {index_file} lists no inputs")
    return names


def read_array(path, count=None):
    """The float32 values of ``path``; with ``count``, exactly that many or an error naming the file."""
    if not os.path.isfile(path):
        raise BinLayoutError(f"file not found: {path}")
    values = np.fromfile(path, dtype=np.float32)
    if count is not None and values.size != count:
        raise BinLayoutError(f"{path} has {values.size} float32 values, expected {count}")
    return values


def read_arrays(folder, names):
    """The files ``names`` under ``folder`` as an N x D float32 array; all must have the first one's size."""
    first = read_array(os.path.join(folder, names[0]))
    out = np.empty((len(names), first.size), np.float32)
    out[0] = first
    for row, name in enumerate(names[1:], 1):
        out[row] = read_array(os.path.join(folder, name), first.size)
    return out
