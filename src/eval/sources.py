"""Choosing the reader of a pair set: LFW pairs file, generic ``label path1 path2`` list or insightface ``.bin``."""

import os

from src.eval.binset import read_bin
from src.eval.pairs import PairsFormatError, lfw_header, read_label_pairs, read_lines, read_pairs

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
        pair_set = read_bin(path)
    elif pairs_format == "lfw":
        pair_set = read_pairs(path, root, ext)
    else:
        pair_set = read_label_pairs(path, root)
    check_both_kinds(pair_set)
    return pair_set


def check_both_kinds(pair_set):
    """Verification needs same-identity and different-identity pairs; a set without one kind names its file."""
    same = int(pair_set.issame.sum())
    if same in (0, len(pair_set)):
        raise PairsFormatError(
            f"{pair_set.source}: all {len(pair_set)} pairs are "
            f"{'different' if same == 0 else 'same'}-identity pairs; verification needs both "
            f"kinds (no {'same' if same == 0 else 'different'}-identity pair found)"
        )
