"""Verification pair sets from text files: the LFW ``pairs.txt`` family and generic ``label path1 path2`` lists.

LFW header ``F N`` (View 2, ``pairs.txt``): F folds, each N same-identity lines then N different-identity lines,
contiguous. LFW header ``N`` (View 1, ``pairsDevTrain/DevTest.txt``): N same lines then N different lines; the 10
folds are built from equal shares of each (fold k: same lines k N/10 .. (k+1) N/10 and the same range of the
different lines). Same lines are ``name n1 n2``, different lines ``name1 n1 name2 n2`` (tabs or spaces);
image ``n`` of ``name`` is ``name/name_%04d<ext>``.

Generic list: one ``label path1 path2`` per line, label 1 = same identity, 0 = different; blank lines and ``#``
comments are skipped. Its 10 folds are contiguous blocks of lines (scikit-learn ``KFold`` without shuffling,
as insightface does for its ``.bin`` sets), so the list should interleave same and different pairs.
"""

import logging
import os
from dataclasses import dataclass, replace

import numpy as np

from src.data.text_lines import text_lines

LOG = logging.getLogger("facerec.eval")
NUM_FOLDS = 10


class PairsFormatError(ValueError):
    """A malformed pairs file; the message names the file and line."""


@dataclass
class PairSet:
    """Unique images and, per pair, the two image indices, same/different and the fold.

    ``relpaths[i]`` is image i's path relative to ``root`` (for a ``.bin`` set, a name ``file#index``);
    ``where[i]`` names the file and line that first uses image i (for error messages); ``encoded`` holds the
    encoded image bytes when the set carries its own images (``.bin``), else None; ``without_landmarks`` the images
    whose pairs were left out because the landmark file has no entry for them (``load_pair_images``).
    """

    source: str
    root: str
    relpaths: list
    where: list
    first: np.ndarray
    second: np.ndarray
    issame: np.ndarray
    folds: np.ndarray
    encoded: list = None
    without_landmarks: list = None

    @property
    def paths(self):
        return [os.path.join(self.root, p) for p in self.relpaths]

    def __len__(self):
        return len(self.issame)


def contiguous_folds(count, num_folds=NUM_FOLDS):
    """Fold ids of ``count`` items cut into ``num_folds`` contiguous blocks, the first ``count % num_folds`` one
    item longer (scikit-learn ``KFold(num_folds, shuffle=False)``)."""
    if count < num_folds:
        raise ValueError(f"{count} pairs cannot be split into {num_folds} folds")
    sizes = np.full(num_folds, count // num_folds)
    sizes[: count % num_folds] += 1
    return np.repeat(np.arange(num_folds), sizes)


class _PairCollector:
    """Accumulates pairs, numbering each distinct image once and remembering where it first appears."""

    def __init__(self):
        self.index, self.relpaths, self.where = {}, [], []
        self.first, self.second, self.issame = [], [], []

    def add(self, a, b, same, where):
        ids = []
        for rel in (a, b):
            if rel not in self.index:
                self.index[rel] = len(self.relpaths)
                self.relpaths.append(rel)
                self.where.append(where)
            ids.append(self.index[rel])
        self.first.append(ids[0])
        self.second.append(ids[1])
        self.issame.append(same)

    def build(self, source, root, folds):
        return PairSet(
            source,
            root,
            self.relpaths,
            self.where,
            np.array(self.first, np.int64),
            np.array(self.second, np.int64),
            np.array(self.issame, bool),
            np.asarray(folds),
        )


def read_lines(path):
    """(line number, fields) of the non-blank lines that are not ``#`` comments."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pairs file not found: {path}")
    lines = [(number, text.split()) for number, text in text_lines(path, PairsFormatError, comments=True)]
    if not lines:
        raise PairsFormatError(f"{path}: empty pairs file")
    return lines


def drop_missing_images(pair_set):
    """``pair_set`` without the pairs that name an image absent from disk, and those images' relative paths.

    LFW's ``images_150`` lacks ``Betsy_Coffin_0001.jpg``, which one pairsDevTest line and two pairs.txt lines
    name; the caller records the skip. The remaining pairs keep their fold ids."""
    if pair_set.encoded is not None:
        return pair_set, []
    present = np.array([os.path.isfile(p) for p in pair_set.paths], bool)
    missing = [rel for rel, ok in zip(pair_set.relpaths, present) if not ok]
    return (drop_images(pair_set, present) if missing else pair_set), missing


def drop_images(pair_set, usable):
    """``pair_set`` without the pairs that name an image whose ``usable`` flag (one per image) is False; the
    remaining pairs keep their fold ids."""
    keep = usable[pair_set.first] & usable[pair_set.second]
    used = np.unique(np.concatenate([pair_set.first[keep], pair_set.second[keep]]))
    new_index = np.full(len(pair_set.relpaths), -1)
    new_index[used] = np.arange(len(used))
    return replace(
        pair_set,
        relpaths=[pair_set.relpaths[i] for i in used],
        where=[pair_set.where[i] for i in used],
        first=new_index[pair_set.first[keep]],
        second=new_index[pair_set.second[keep]],
        issame=pair_set.issame[keep],
        folds=pair_set.folds[keep],
        encoded=None if pair_set.encoded is None else [pair_set.encoded[i] for i in used],
    )


def image_name(name, number, ext):
    return f"{name}/{name}_{number:04d}{ext}"


def _parse_pair(fields, where, ext):
    try:
        if len(fields) == 3:
            return image_name(fields[0], int(fields[1]), ext), image_name(fields[0], int(fields[2]), ext), True
        if len(fields) == 4:
            return image_name(fields[0], int(fields[1]), ext), image_name(fields[2], int(fields[3]), ext), False
    except ValueError as err:
        raise PairsFormatError(f"{where}: image numbers must be integers: {' '.join(fields)!r}") from err
    raise PairsFormatError(f"{where}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {' '.join(fields)!r}")


def _fold_ids(header, where, same_flags):
    count = len(same_flags)
    if len(header) == 2:
        folds, per_fold = header
        if count != 2 * folds * per_fold:
            raise PairsFormatError(f"{where}: header says {folds} folds of 2x{per_fold} pairs, found {count} pairs")
        return np.repeat(np.arange(folds), 2 * per_fold)
    (per_class,) = header
    if count != 2 * per_class or not all(same_flags[:per_class]) or any(same_flags[per_class:]):
        raise PairsFormatError(
            f"{where}: header says {per_class} same then {per_class} different pairs; "
            f"the file does not have that layout"
        )
    if per_class % NUM_FOLDS:
        raise PairsFormatError(f"{where}: {per_class} pairs per class do not split into {NUM_FOLDS} folds")
    share = np.repeat(np.arange(NUM_FOLDS), per_class // NUM_FOLDS)
    return np.concatenate([share, share])


def lfw_header(fields):
    """The header's integers, or None when the line is not an LFW header."""
    try:
        values = [int(v) for v in fields]
    except ValueError:
        return None
    return values if len(values) in (1, 2) else None


def read_pairs(pairs_path, root="", ext=".jpg"):
    """Parse an LFW pairs file (either header form) into a ``PairSet`` of images under ``root``."""
    lines = read_lines(pairs_path)
    header_line, fields = lines[0]
    header = lfw_header(fields)
    if header is None:
        raise PairsFormatError(
            f"{pairs_path}:{header_line}: header must be 'folds per_fold' or 'count', got {' '.join(fields)!r}"
        )
    pairs = _PairCollector()
    for number, fields in lines[1:]:
        where = f"{pairs_path}:{number}"
        pairs.add(*_parse_pair(fields, where, ext), where)
    return pairs.build(pairs_path, root, _fold_ids(header, pairs_path, pairs.issame))


def read_label_pairs(list_path, root=""):
    """Parse a ``label path1 path2`` list (label 1 same, 0 different) into a ``PairSet`` with contiguous folds."""
    pairs = _PairCollector()
    for number, fields in read_lines(list_path):
        where = f"{list_path}:{number}"
        if len(fields) != 3:
            raise PairsFormatError(f"{where}: expected 'label path1 path2', got {' '.join(fields)!r}")
        if fields[0] not in ("0", "1"):
            raise PairsFormatError(f"{where}: label must be 1 (same) or 0 (different), got {fields[0]!r}")
        pairs.add(fields[1], fields[2], fields[0] == "1", where)
    folds = contiguous_folds(len(pairs.issame))
    pair_set = pairs.build(list_path, root, folds)
    one_class = [int(k) for k in range(NUM_FOLDS) if len(set(pair_set.issame[folds == k])) < 2]
    if one_class:
        LOG.warning(
            "%s: folds %s hold only same or only different pairs (folds are contiguous blocks of lines: "
            "interleave same and different pairs)",
            list_path,
            one_class,
        )
    return pair_set
