"""Choosing the reader of a pair set: LFW pairs file, generic ``label path1 path2`` list or insightface ``.bin``."""
import os

from src.eval.binset import read_bin
from src.eval.pairs import lfw_header, read_label_pairs, read_lines, read_pairs

FORMATS = ("auto", "lfw", "list", "bin")


def detect_format(path):
    """'bin' for ``*.bin``, 'lfw' when the first line is an LFW header (one or two integers), else 'list'."""
    if path.endswith(".bin"):
        return "bin"
    _, fields = read_lines(path)[0]
    return "lfw" if lfw_header(fields) is not None else "list"


def read_pair_set(path, pairs_format="auto", root="", ext=".jpg"):
    """Read a pair set in ``pairs_format`` (one of ``FORMATS``; 'auto' detects it from the file)."""
    if pairs_format not in FORMATS:
        raise ValueError(f"unknown pairs format '{pairs_format}'; choose one of {FORMATS}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pairs file not found: {path}")
    if pairs_format == "auto":
        pairs_format = detect_format(path)
    if pairs_format == "bin":
        return read_bin(path)
    if pairs_format == "lfw":
        return read_pairs(path, root, ext)
    return read_label_pairs(path, root)
