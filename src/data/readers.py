"""Training list readers: each format's reader turns a list file (or folder, or RecordIO file) into a
``TrainingList`` of ``Sample`` records.

(``Sample`` and ``TrainingList`` are described in ``src/data/samples.py``.) A reader is
``reader(list_path, root, errors=None)``: ``root`` is prepended to the list's relative paths; with ``errors``
a list, malformed lines are collected there (for the dataset checker) instead of stopping at the first.

Formats (``list_format``):
  plain       ``relpath label``                                   (spaces or tabs)
  sphereface  ``relpath label x1 y1 ... x5 y5``                    (sphereface/CosFace landmark lists)
  arcface     ``label;path``                                      (seed arcface's txt_annotation.py)
  celeba      ``000001.jpg 2880``                                 (identity_CelebA.txt, 1-based ids, remapped)
  folder      ``root/<identity>/*.jpg``                           (train_list is the root folder)
  recordio    ``train.rec`` + ``train.idx`` (+ ``property``)      (InsightFace, read without MXNet)
The text formats cannot all be told apart from their lines (``plain`` and ``celeba`` look the same), so the
format is explicit; a malformed line's error says which format the line looks like.
"""
from __future__ import annotations

import os

import numpy as np

from src.data.identity_tree import scan_identity_tree, tree_training_list
from src.data.recordio import read_face_rec
from src.data.samples import Sample, TrainingList
from src.data.text_lines import line_failed, text_lines


class ListFormatError(ValueError):
    """A malformed line of a list file; the message names the file and line."""


def parse_label(text):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"label {text!r} is not an integer") from None


def split_fields(text, count):
    """A line's fields, split on white space; when that does not give ``count`` fields and the line has a tab, the
    path is everything before the first tab (so a path may hold spaces) and the rest is split on white space."""
    fields = text.split()
    if len(fields) != count and "\t" in text:
        path, rest = text.split("\t", 1)
        fields = [path.strip()] + rest.split()
    return fields


def parse_plain(text):
    fields = split_fields(text, 2)
    if len(fields) != 2:
        hint = "; a path with spaces? separate the fields with a tab" if "\t" not in text and len(fields) > 2 else ""
        raise ValueError(f"expected 'path label', got {len(fields)} fields{hint}")
    return fields[0], parse_label(fields[1]), None


def parse_sphereface(text):
    fields = split_fields(text, 12)
    if len(fields) != 12:
        raise ValueError(f"expected 'path label x1 y1 ... x5 y5' (12 fields), got {len(fields)} fields")
    try:
        landmarks = np.array(fields[2:], np.float32).reshape(5, 2)
    except ValueError:
        raise ValueError("landmark coordinates must be numbers") from None
    return fields[0], parse_label(fields[1]), landmarks


def parse_arcface(text):
    if ";" not in text:
        raise ValueError("expected 'label;path' (no ';' found)")
    label, path = text.split(";", 1)
    if not path.strip():
        raise ValueError("the path after ';' is empty")
    return path.strip(), parse_label(label.strip()), None


def parse_celeba(text):
    path, label, _ = parse_plain(text)
    if label < 1:
        raise ValueError(f"CelebA identity {label} is not a 1-based id")
    return path, label, None


LINE_PARSERS = {"plain": parse_plain, "sphereface": parse_sphereface, "arcface": parse_arcface,
                "celeba": parse_celeba}


def looks_like(text):
    """The text formats a malformed line would parse as (for the error's hint)."""
    names = []
    for name in ("sphereface", "plain", "arcface"):
        try:
            LINE_PARSERS[name](text)
        except ValueError:
            continue
        names.append(name)
    return names


def line_error(list_format, text, err):
    others = [name for name in looks_like(text) if name != list_format]
    hint = f" (the line looks like list_format={others[0]})" if others else ""
    return f"{err}{hint}: {text!r}"


def read_text_list(list_path: str, root: str, list_format: str, errors: list | None = None) -> list[Sample]:
    """Parse every line of a text list with the ``list_format`` line parser.

    Blank lines and ``#`` comments are skipped. A malformed line raises ``ListFormatError`` naming the file and
    line, or, when ``errors`` is a list, is appended to it as a ``LineError`` and reading goes on.
    """
    parse = LINE_PARSERS[list_format]
    samples = []
    for number, text in text_lines(list_path, ListFormatError, comments=True, errors=errors):
        try:
            relpath, label, landmarks = parse(text)
        except ValueError as err:
            line_failed(list_path, number, line_error(list_format, text, err), ListFormatError, errors)
            continue
        samples.append(Sample(os.path.join(root, relpath), label, landmarks, number))
    return samples


def text_list_reader(list_format):
    """The reader of a text format whose labels are used as they are (plain, sphereface, arcface)."""
    def read(list_path, root="", errors=None):
        return TrainingList(read_text_list(list_path, root, list_format, errors), None)
    read.__doc__ = f"A ``{list_format}`` list; labels as written."
    return read


def dense_labels(samples):
    """Remap sparse labels to 0..C-1 in increasing order; returns (samples, original label of each class)."""
    originals = sorted({s.label for s in samples})
    index = {label: dense for dense, label in enumerate(originals)}
    return [s._replace(label=index[s.label]) for s in samples], originals


def read_celeba_identities(list_path, root="", errors=None):
    """CelebA's ``identity_CelebA.txt``: 1-based identity ids remapped densely; class_names are the ids."""
    samples, originals = dense_labels(read_text_list(list_path, root, "celeba", errors))
    return TrainingList(samples, [str(label) for label in originals])


def read_identity_folders(list_path, root="", errors=None):
    """An identity-folder tree ``list_path/<identity>/<image>``: classes are the sorted folder names."""
    return tree_training_list(list_path, scan_identity_tree(list_path))


def read_recordio(list_path, root="", errors=None):
    """InsightFace ``train.rec`` (+ ``train.idx``, ``property`` beside it); see ``src/data/recordio.py``."""
    return read_face_rec(list_path, errors)


READERS = {"plain": text_list_reader("plain"), "sphereface": text_list_reader("sphereface"),
           "arcface": text_list_reader("arcface"), "celeba": read_celeba_identities, "folder": read_identity_folders,
           "recordio": read_recordio}


def read_training_list(list_path: str, list_format: str = "plain", root: str = "",
                       errors: list | None = None) -> TrainingList:
    """Read a training list in ``list_format``; a missing list raises ``FileNotFoundError`` naming it."""
    if list_format not in READERS:
        raise ValueError(f"unknown list_format '{list_format}'; choose one of {sorted(READERS)}")
    expect_folder = list_format == "folder"
    if not (os.path.isdir(list_path) if expect_folder else os.path.isfile(list_path)):
        kind = "identity folder" if expect_folder else "training list"
        raise FileNotFoundError(f"{kind} not found: {list_path} (list_format={list_format})")
    return READERS[list_format](list_path, root, errors)


def format_line(list_format: str, relpath: str, label: int | None, landmarks: np.ndarray | None = None) -> str:
    """One line of a ``plain``, ``arcface`` or ``sphereface`` list (the inverse of the line parsers)."""
    if list_format == "plain":
        separator = "\t" if " " in relpath else " "  # a path with spaces needs the tab (see ``split_fields``)
        return f"{relpath}{separator}{label}"
    if list_format == "arcface":
        return f"{label};{relpath}"
    if list_format == "sphereface":
        return "\t".join([relpath, str(label)] + [format(float(v), ".7g") for v in np.ravel(landmarks)])
    raise ValueError(f"cannot write list_format '{list_format}'; choose plain, arcface or sphereface")


def read_samples(list_path: str, list_format: str = "plain", root: str = "") -> list[Sample]:
    """The samples of ``read_training_list`` (for callers that need no class names)."""
    return read_training_list(list_path, list_format, root).samples

