"""The IJB-B / IJB-C protocol files, in the layout insightface's IJB evaluation reads (``ROOT`` = the set's
folder, ``p`` = ``ijbb`` or ``ijbc``):

- ``loose_crop/<image>``: the face images (loosely cropped);
- ``meta/p_name_5pts_score.txt``: ``image x1 y1 ... x5 y5 score`` per image, the 5 landmarks in the loose crop's
  pixels and the face detector's score;
- ``meta/p_face_tid_mid.txt``: ``image template_id media_id`` per image (images of one media: frames of one video
  or one photo);
- ``meta/p_template_pair_label.txt``: ``template_id template_id label`` per 1:1 pair (1 same subject, 0 not);
- 1:N: ``meta/ijbc_1N_gallery_G1.csv`` and ``_G2.csv`` (IJB-B: ``ijbb_1N_gallery_S1.csv`` and ``_S2.csv``) and
  ``meta/p_1N_probe_mixed.csv``: a header line, then ``TEMPLATE_ID,SUBJECT_ID,...`` per image.

Every problem stops with a message naming the file (and line where there is one).
"""

import os
from dataclasses import dataclass, field

import numpy as np

from src.data.text_lines import text_lines

SETS = ("IJBB", "IJBC")
GALLERY_NAMES = {"IJBB": ("S1", "S2"), "IJBC": ("G1", "G2")}


class IJBFormatError(ValueError):
    """A missing or malformed IJB protocol file, or an image it names that is not there."""


@dataclass
class IJBMeta:
    """The images (name, landmarks 5x2, detector score, template id, media id, in the landmark file's order),
    the 1:1 pairs, and the 1:N galleries and probes ({name: (template ids, subject ids)}, one row per template)."""

    root: str
    name: str
    images: list
    landmarks: np.ndarray
    scores: np.ndarray
    templates: np.ndarray
    medias: np.ndarray
    pairs: np.ndarray = None
    galleries: dict = field(default_factory=dict)
    probes: tuple = None

    def image_path(self, index):
        return os.path.join(self.root, "loose_crop", self.images[index])


def meta_path(root, set_name, suffix):
    return os.path.join(root, "meta", f"{set_name.lower()}_{suffix}")


def _require(path):
    if not os.path.isfile(path):
        raise IJBFormatError(f"IJB protocol file not found: {path}")


def _lines(path):
    _require(path)
    return [(number, text.split()) for number, text in text_lines(path, IJBFormatError)]


def read_landmark_scores(path):
    """(names, N x 5 x 2 landmarks, N detector scores) of ``p_name_5pts_score.txt``."""
    names, points, scores = [], [], []
    for number, fields in _lines(path):
        if len(fields) != 12:
            raise IJBFormatError(f"{path}:{number}: expected 'image x1 y1 ... x5 y5 score', got {len(fields)} fields")
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError as err:
            raise IJBFormatError(f"{path}:{number}: landmarks and score must be numbers") from err
        names.append(fields[0])
        points.append(values[:10])
        scores.append(values[10])
    if not names:
        raise IJBFormatError(f"{path}: no images")
    return names, np.array(points, np.float64).reshape(-1, 5, 2), np.array(scores, np.float64)


def read_template_media(path, names):
    """(template ids, media ids) of ``p_face_tid_mid.txt``, in the order of ``names`` (the landmark file's)."""
    rows = {}
    for number, fields in _lines(path):
        if len(fields) != 3:
            raise IJBFormatError(f"{path}:{number}: expected 'image template_id media_id', got {' '.join(fields)!r}")
        try:
            rows[fields[0]] = (int(fields[1]), int(fields[2]), number)
        except ValueError as err:
            raise IJBFormatError(f"{path}:{number}: template and media ids must be integers") from err
    listed = set(names)
    unknown = [name for name in rows if name not in listed]
    if unknown:
        raise IJBFormatError(
            f"{path}:{rows[unknown[0]][2]}: image {unknown[0]} has no landmarks in the name_5pts_score file"
        )
    missing = [name for name in names if name not in rows]
    if missing:
        raise IJBFormatError(f"{path}: no template for image {missing[0]} (listed in the name_5pts_score file)")
    return (
        np.array([rows[n][0] for n in names], np.int64),
        np.array([rows[n][1] for n in names], np.int64),
        {n: rows[n][2] for n in names},
    )


def read_int_table(path, columns, skip_header=False, delimiter=None):
    """An integer table (the first ``columns`` columns) of a protocol file."""
    _require(path)
    try:
        table = np.loadtxt(
            path, dtype=np.int64, delimiter=delimiter, skiprows=1 if skip_header else 0, usecols=range(columns), ndmin=2
        )
    except ValueError as err:
        raise IJBFormatError(f"{path}: {err}") from err
    if len(table) == 0:
        raise IJBFormatError(f"{path}: no rows")
    return table


def check_templates(ids, known, path, what):
    unknown = np.setdiff1d(ids, known)
    if len(unknown):
        row = int(np.flatnonzero(ids == unknown[0])[0]) + 1
        raise IJBFormatError(
            f"{path}: {what} row {row} names template {unknown[0]}, which has no image in the face_tid_mid file"
        )


def read_meta(root, set_name="IJBC", one_to_one=True, one_to_n=True):
    """Read and check the protocol files of the IJB set at ``root``; every image they name must exist."""
    if set_name not in SETS:
        raise IJBFormatError(f"unknown IJB set '{set_name}'; choose one of {SETS}")
    if not os.path.isdir(root):
        raise IJBFormatError(f"IJB folder not found: {root}")
    points_path = meta_path(root, set_name, "name_5pts_score.txt")
    tid_path = meta_path(root, set_name, "face_tid_mid.txt")
    names, landmarks, scores = read_landmark_scores(points_path)
    templates, medias, lines = read_template_media(tid_path, names)
    for index, name in enumerate(names):
        if not os.path.isfile(os.path.join(root, "loose_crop", name)):
            raise IJBFormatError(
                f"{tid_path}:{lines[name]}: template {templates[index]} names image "
                f"{name}, which is not in {os.path.join(root, 'loose_crop')}"
            )
    meta = IJBMeta(root, set_name, names, landmarks, scores, templates, medias)
    known = np.unique(templates)
    if one_to_one:
        pair_path = meta_path(root, set_name, "template_pair_label.txt")
        meta.pairs = read_int_table(pair_path, 3)
        check_templates(meta.pairs[:, :2].ravel(), known, pair_path, "pair")
        if not np.isin(meta.pairs[:, 2], (0, 1)).all():
            raise IJBFormatError(f"{pair_path}: labels must be 1 (same subject) or 0")
        if len(np.unique(meta.pairs[:, 2])) < 2:
            raise IJBFormatError(f"{pair_path}: the pairs must hold both same-subject and different-subject pairs")
    if one_to_n:
        for gallery in GALLERY_NAMES[set_name]:
            path = meta_path(root, set_name, f"1N_gallery_{gallery}.csv")
            table = read_int_table(path, 2, skip_header=True, delimiter=",")
            check_templates(table[:, 0], known, path, "gallery")
            meta.galleries[gallery] = unique_templates(table)
        path = meta_path(root, set_name, "1N_probe_mixed.csv")
        table = read_int_table(path, 2, skip_header=True, delimiter=",")
        check_templates(table[:, 0], known, path, "probe")
        meta.probes = unique_templates(table)
    return meta


def unique_templates(table):
    """(sorted unique template ids, the subject id of each) of TEMPLATE_ID,SUBJECT_ID rows (one per image)."""
    ids, first = np.unique(table[:, 0], return_index=True)
    return ids, table[first, 1]
