"""A gallery of enrolled identities for 1:N search: its layout on disk, its cache file and its fingerprint.

Layout: ``DIR/<identity>/<photo>`` (any number of photos per identity, ``src.data.identity_tree`` extensions);
files directly under DIR and folders without photos are skipped and reported. The cache is one ``.npz`` (no
pickles: names are stored as Unicode arrays) holding the identities, their L2-normalised mean embeddings, the
photo counts, what was skipped and the fingerprint the entries were made with; a cache whose fingerprint differs
from the current one is ignored and rewritten.
"""

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from src.data.identity_tree import scan_identity_tree
from src.infer.search_index import build_index

LOG = logging.getLogger("facerec.eval")
CACHE_SUFFIX = ".gallery.npz"
CACHE_FORMAT = 1


class GalleryError(ValueError):
    """A gallery that cannot be enrolled or searched; the message names the folder or file."""


@dataclass(frozen=True)
class Match:
    identity: str
    cosine: float


@dataclass
class Gallery:
    """Enrolled identities: ``embeddings[i]`` (L2-normalised mean of ``photos[i]`` photos) is ``identities[i]``.
    ``skipped``: (path, reason) of every photo or folder enrolment left out; ``cached``: read from a cache file."""

    identities: list
    embeddings: np.ndarray
    photos: np.ndarray
    fingerprint: str = ""
    skipped: list = field(default_factory=list)
    cached: bool = False
    _index: object = field(default=None, repr=False, compare=False)

    def __len__(self):
        return len(self.identities)

    @property
    def index(self):
        """The search index over the embeddings, built on first use (``src.infer.search_index.build_index``)."""
        if self._index is None:
            self._index = build_index(self.embeddings)
        return self._index

    def nearest(self, queries, top_k):
        """For each row of ``queries`` (N x D, L2-normalised) its ``top_k`` best ``Match``es, best first."""
        if len(queries) == 0:
            return []
        queries = np.asarray(queries, np.float32)
        if queries.shape[1] != self.embeddings.shape[1]:
            raise GalleryError(
                f"queries have {queries.shape[1]}-d embeddings, the gallery {self.embeddings.shape[1]}-d"
            )
        scores, ids = self.index.search(queries, top_k)
        return [
            [Match(self.identities[i], float(s)) for s, i in zip(row_scores, row_ids)]
            for row_scores, row_ids in zip(scores, ids)
        ]


def scan_gallery(folder):
    """({identity: [photo path, ...]}, [(path, reason), ...] of what is not a photo of an identity folder)."""
    if not os.path.isdir(folder):
        raise GalleryError(f"gallery folder not found: {folder}")
    tree = scan_identity_tree(folder)
    skipped = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and name not in tree:
            skipped.append((path, "identity folder without photos"))
        elif os.path.isfile(path) and not name.endswith(CACHE_SUFFIX):
            skipped.append((path, "not inside an identity folder"))
    if not tree:
        raise GalleryError(f"gallery {folder}: no identity folder with photos (expected {folder}/<identity>/<photo>)")
    return {identity: [os.path.join(folder, p) for p in relpaths] for identity, relpaths in tree.items()}, skipped


def file_digest(path, chunk=1 << 20):
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def files_state(paths, root):
    """[relpath, size, mtime_ns] of each file: what tells that a gallery photo was added, removed or changed."""
    state = []
    for path in paths:
        stat = os.stat(path)
        state.append([os.path.relpath(path, root).replace(os.sep, "/"), stat.st_size, stat.st_mtime_ns])
    return state


def fingerprint(parts):
    """SHA-256 of a JSON-serialisable description (model digest, settings, files)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def default_cache_path(folder):
    """``<folder>.gallery.npz`` beside the gallery folder."""
    return os.path.normpath(os.path.abspath(folder)) + CACHE_SUFFIX


def save_gallery(gallery, path):
    """Write the cache atomically (a temporary file renamed), so a killed run never leaves half a cache."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as f:
            np.savez(
                f,
                format=np.array(CACHE_FORMAT),
                fingerprint=np.array(gallery.fingerprint),
                identities=np.array(gallery.identities, dtype=str),
                embeddings=gallery.embeddings.astype(np.float32),
                photos=gallery.photos.astype(np.int64),
                skipped=np.array([list(s) for s in gallery.skipped], dtype=str).reshape(-1, 2),
            )
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_gallery(path, expected):
    """The cached ``Gallery`` at ``path`` if it was made with fingerprint ``expected``, else None (logged)."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != CACHE_FORMAT or str(data["fingerprint"]) != expected:
                LOG.info("gallery cache %s is out of date (model, settings or photos changed): enrolling again", path)
                return None
            return Gallery(
                identities=data["identities"].tolist(),
                embeddings=data["embeddings"],
                photos=data["photos"],
                fingerprint=expected,
                skipped=[tuple(s) for s in data["skipped"].tolist()],
                cached=True,
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        LOG.warning("gallery cache %s is unreadable (%s): enrolling again", path, err)
        return None
