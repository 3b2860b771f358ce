"""1:N identification with a ``Predictor``: enrol a gallery (a folder or a mapping) and search query images.

One face per gallery photo (the most central one the detector finds, or the one its landmarks give); every face
of a query photo is searched, except detections smaller than ``min_face`` pixels (the box's shorter side) or
scoring below ``min_score`` (SEARCH_MIN_FACE, SEARCH_MIN_SCORE by default): MTCNN's false detections in clutter
are small boxes of middling score (21-30 px at 0.73 seen on held-out photos). Photos that give no face
(unreadable, no face found, no or unusable landmarks) are skipped with a message, never raised.
"""

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from src.data.alignment import AlignmentError
from src.data.image_io import ImageDecodeError
from src.data.landmarks import LandmarkFormatError
from src.detect import NoFaceError
from src.infer.gallery import (
    Gallery,
    GalleryError,
    default_cache_path,
    file_digest,
    files_state,
    fingerprint,
    load_gallery,
    save_gallery,
    scan_gallery,
)
from src.infer.image_input import image_name
from src.infer.progress_bar import ProgressBar

LOG = logging.getLogger("facerec.eval")
# Errors of one image that leave no face to embed: unreadable, no face found, landmarks missing or unusable.
FACE_ERRORS = (ImageDecodeError, NoFaceError, LandmarkFormatError, AlignmentError)
# Config keys that change a face's embedding (with the model file and how faces are found).
EMBEDDING_KEYS = ("backbone", "backbone_width", "embedding_size", "image_size", "fusion", "eval_fit")
CHUNK = 256
SEARCH_MIN_FACE = 32
SEARCH_MIN_SCORE = 0.9


@dataclass(frozen=True)
class QueryResult:
    """The search of one face of a query image: its ``matches`` (``gallery.Match``, best first), or ``error`` when
    the image gave no face. ``face`` is the face's rank in its image (0 = most central), of ``faces`` found;
    ``box`` its detector box (x1, y1, x2, y2) and ``score`` its detection score, None when it was not detected;
    ``skipped`` why a detected face was not searched (below ``min_face`` or ``min_score``)."""

    image: str
    face: int = 0
    faces: int = 1
    box: tuple | None = None
    matches: tuple = ()
    error: str | None = None
    score: float | None = None
    skipped: str | None = None

    def identity(self, threshold=None):
        """The best match's identity, or None (unknown) when its cosine is not above ``threshold``."""
        best = self.matches[0]
        return best.identity if threshold is None or best.cosine > threshold else None


def face_crops(predictor, image, landmarks):
    """(the aligned faces of ``image``, N x H x W x 3, most central first; their detector ``Face``s or [None])."""
    if landmarks is None and predictor.detect:
        found, aligned = predictor.faces(image)
        return aligned, found
    points = landmarks(image) if landmarks is not None else None
    return predictor.prepare(image, points)[None], [None]


def several_faces_note(crowded, what):
    """The one line every mode logs for its photos with several faces (their most central face is used)."""
    return f"{crowded} photos had several faces; the most central one was {what}"


def too_small_or_unsure(face, min_face, min_score):
    """Why a detected face is not searched, or None."""
    side = min(face.box[2] - face.box[0], face.box[3] - face.box[1])
    if side < min_face:
        return f"a {side:.0f} px face, below min_face {min_face} (a false detection?)"
    if face.score < min_score:
        return f"detection score {face.score:.3f}, below min_score {min_score} (a false detection?)"
    return None


def face_source(predictor, paths, landmarks):
    """How the gallery's faces are found, for the fingerprint: the landmarks used, the detector, or aligned."""
    if landmarks is not None:
        points = []
        for path in paths:
            try:
                points.append(np.asarray(landmarks(path), np.float32).round(3).tolist())
            except LandmarkFormatError:
                points.append(None)
        return ["landmarks", points]
    if predictor.detect:
        detector = predictor.detector
        settings = {k: v for k, v in sorted(vars(detector).items()) if isinstance(v, (bool, int, float, str, tuple))}
        return ["detect", f"{type(detector).__module__}.{type(detector).__qualname__}", settings]
    return ["aligned"]


def gallery_fingerprint(predictor, folder, people, landmarks):
    paths = [path for photos in people.values() for path in photos]
    return fingerprint(
        {
            "model": file_digest(predictor.model_path),
            "settings": {key: getattr(predictor.cfg, key) for key in EMBEDDING_KEYS},
            "faces": face_source(predictor, paths, landmarks),
            "files": files_state(paths, folder),
        }
    )


def embed_people(predictor, people, landmarks):
    """({identity: (sum of embeddings, photo count)}, [(photo, reason) skipped], photos with several faces)."""
    photos = [(identity, index, image) for identity, images in people.items() for index, image in enumerate(images)]
    sums, skipped, crowded = {}, [], 0
    bar = ProgressBar(len(photos))
    for start in range(0, len(photos), CHUNK):
        faces, owners = [], []
        for identity, index, image in photos[start : start + CHUNK]:
            try:
                aligned, found = face_crops(predictor, image, landmarks)
            except FACE_ERRORS as err:
                name = image_name(image, f"{identity}[{index}]")
                LOG.warning("gallery: skipped %s: %s", name, err)
                skipped.append((name, str(err)))
                continue
            crowded += len(found) > 1
            faces.append(aligned[0])
            owners.append(identity)
        if faces:
            for identity, feature in zip(owners, predictor.embed_prepared(np.stack(faces))):
                total, count = sums.get(identity, (0.0, 0))
                sums[identity] = (total + feature, count + 1)
        bar.update(min(start + CHUNK, len(photos)))
    return sums, skipped, crowded


def enroll(predictor, gallery, cache=True, landmarks=None):
    """``Predictor.enroll``: a ``Gallery`` from a folder (cached) or a mapping {identity: [images]}."""
    if isinstance(gallery, Mapping):
        people, skipped, key, cache_path = {str(k): list(v) for k, v in gallery.items()}, [], "", None
        if not people:
            raise GalleryError("the gallery mapping has no identity")
    else:
        folder = os.fspath(gallery)
        people, skipped = scan_gallery(folder)
        for path, reason in skipped:
            LOG.warning("gallery: skipped %s: %s", path, reason)
        key = gallery_fingerprint(predictor, folder, people, landmarks)
        cache_path = None if cache is False else default_cache_path(folder) if cache is True else os.fspath(cache)
        cached = load_gallery(cache_path, key) if cache_path else None
        if cached is not None:
            LOG.info("gallery: %d identities from the cache %s", len(cached), cache_path)
            return cached
    sums, failed, crowded = embed_people(predictor, people, landmarks)
    skipped += failed
    for identity in people:
        if identity not in sums:
            LOG.warning("gallery: skipped identity %s: no photo with a usable face", identity)
            skipped.append((identity, "no photo with a usable face"))
    if not sums:
        raise GalleryError(f"no identity could be enrolled ({len(skipped)} photos or folders skipped)")
    identities = [identity for identity in people if identity in sums]
    means = np.stack([sums[identity][0] / sums[identity][1] for identity in identities]).astype(np.float32)
    result = Gallery(
        identities,
        means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12),
        np.array([sums[identity][1] for identity in identities]),
        key,
        skipped,
    )
    if crowded:
        LOG.info("gallery: %s", several_faces_note(crowded, "enrolled"))
    if cache_path:
        try:
            save_gallery(result, cache_path)
            LOG.info("gallery: cached in %s", cache_path)
        except OSError as err:
            LOG.warning(
                "gallery: cannot write the cache %s (%s); enrolment is not kept (infer.py --cache PATH "
                "puts it elsewhere)",
                cache_path,
                err.strerror or err,
            )
    return result


def search(predictor, images, gallery, top_k=1, landmarks=None, min_face=SEARCH_MIN_FACE, min_score=SEARCH_MIN_SCORE):
    """``Predictor.search``: one ``QueryResult`` per face of each query (most central first), or one with
    ``error`` for a query that gives no face; detected faces below ``min_face`` or ``min_score`` are not searched
    (``skipped`` says why)."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    entries, crops = [], []
    for number, image in enumerate(images):
        name = image_name(image, f"query[{number}]")
        try:
            aligned, found = face_crops(predictor, image, landmarks)
        except FACE_ERRORS as err:
            entries.append(QueryResult(name, faces=0, error=str(err)))
            continue
        for rank, (crop, face) in enumerate(zip(aligned, found)):
            if face is None:
                entries.append(QueryResult(name))
                crops.append(crop)
                continue
            skipped = too_small_or_unsure(face, min_face, min_score)
            box = tuple(float(v) for v in face.box)
            entries.append(QueryResult(name, rank, len(found), box, score=face.score, skipped=skipped))
            if skipped is None:
                crops.append(crop)
    if not crops:
        return entries
    features = np.concatenate(
        [predictor.embed_prepared(np.stack(crops[start : start + CHUNK])) for start in range(0, len(crops), CHUNK)]
    )
    matches = iter(gallery.nearest(features, top_k))
    return [
        entry if entry.error or entry.skipped else replace(entry, matches=tuple(next(matches))) for entry in entries
    ]
