"""Verification pair sets: the LFW ``pairs.txt`` family of files -> images, pairs and fold ids.

Header ``F N`` (View 2, ``pairs.txt``): F folds, each N same-identity lines then N different-identity lines,
contiguous. Header ``N`` (View 1, ``pairsDevTrain/DevTest.txt``): N same lines then N different lines; the 10
folds are built from equal shares of each (fold k: same lines k N/10 .. (k+1) N/10 and the same range of the
different lines). Same lines are ``name n1 n2``, different lines ``name1 n1 name2 n2`` (tabs or spaces);
image ``n`` of ``name`` is ``name/name_%04d<ext>``.
"""
import os
from dataclasses import dataclass

import numpy as np

NUM_FOLDS = 10


class PairsFormatError(ValueError):
    """A malformed pairs file; the message names the file and line."""


@dataclass
class PairSet:
    """Unique images (paths relative to ``root``), and per pair: the two image indices, same/different, fold."""
    root: str
    relpaths: list
    first: np.ndarray
    second: np.ndarray
    issame: np.ndarray
    folds: np.ndarray

    @property
    def paths(self):
        return [os.path.join(self.root, p) for p in self.relpaths]


def drop_missing_images(pair_set):
    """``pair_set`` without the pairs that name an image absent from disk, and those images' relative paths.

    LFW's ``images_150`` lacks ``Betsy_Coffin_0001.jpg``, which one pairsDevTest line and two pairs.txt lines
    name; the caller records the skip. The remaining pairs keep their fold ids."""
    present = np.array([os.path.isfile(p) for p in pair_set.paths], bool)
    missing = [rel for rel, ok in zip(pair_set.relpaths, present) if not ok]
    if not missing:
        return pair_set, missing
    keep = present[pair_set.first] & present[pair_set.second]
    used = np.unique(np.concatenate([pair_set.first[keep], pair_set.second[keep]]))
    new_index = np.full(len(pair_set.relpaths), -1)
    new_index[used] = np.arange(len(used))
    return PairSet(pair_set.root, [pair_set.relpaths[i] for i in used], new_index[pair_set.first[keep]],
                   new_index[pair_set.second[keep]], pair_set.issame[keep], pair_set.folds[keep]), missing


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
        raise PairsFormatError(f"{where}: header says {per_class} same then {per_class} different pairs; "
                               f"the file does not have that layout")
    if per_class % NUM_FOLDS:
        raise PairsFormatError(f"{where}: {per_class} pairs per class do not split into {NUM_FOLDS} folds")
    share = np.repeat(np.arange(NUM_FOLDS), per_class // NUM_FOLDS)
    return np.concatenate([share, share])


def read_pairs(pairs_path, root="", ext=".jpg"):
    """Parse a pairs file (either header form) into a ``PairSet`` of images under ``root``."""
    if not os.path.isfile(pairs_path):
        raise FileNotFoundError(f"pairs file not found: {pairs_path}")
    with open(pairs_path, "r", encoding="utf-8") as f:
        lines = [(n, line.split()) for n, line in enumerate(f, 1) if line.strip()]
    if not lines:
        raise PairsFormatError(f"{pairs_path}: empty pairs file")
    header_line, header = lines[0]
    try:
        header = [int(v) for v in header]
    except ValueError as err:
        raise PairsFormatError(f"{pairs_path}:{header_line}: header must be 'folds per_fold' or 'count'") from err
    if len(header) not in (1, 2):
        raise PairsFormatError(f"{pairs_path}:{header_line}: header must be 'folds per_fold' or 'count'")
    index, paths, first, second, issame = {}, [], [], [], []
    for number, fields in lines[1:]:
        a, b, same = _parse_pair(fields, f"{pairs_path}:{number}", ext)
        for rel in (a, b):
            if rel not in index:
                index[rel] = len(paths)
                paths.append(rel)
        first.append(index[a])
        second.append(index[b])
        issame.append(same)
    folds = _fold_ids(header, pairs_path, issame)
    return PairSet(root, paths, np.array(first), np.array(second),
                   np.array(issame, bool), folds)
