"""IJB-B / IJB-C evaluation of a model: read the protocol (src/eval/ijb_meta.py), align every loose crop with its
landmarks and embed it and its mirror image in chunks (with a progress line), pool images into templates
(src/eval/ijb_templates.py), then 1:1 verification and 1:N identification (src/eval/ijb_metrics.py).

The image embeddings are saved (``<output>_features.npz``: names, orig, flip) so another pooling setting can
be evaluated without embedding again (``ijb_features``).
"""

import logging
import time

import numpy as np

from src.data.alignment import AlignmentError, align_face
from src.data.image_io import load_rgb
from src.eval.embed import embed_images
from src.eval.ijb_meta import IJBFormatError
from src.eval.ijb_metrics import PROTOCOLS, identification_all, verification
from src.eval.ijb_templates import image_features, template_features
from src.model_utils.progress import format_duration

LOG = logging.getLogger("facerec.eval")


def aligned_faces(meta, indices, image_size):
    faces = []
    for i in indices:
        try:
            faces.append(align_face(load_rgb(meta.image_path(i)), meta.landmarks[i], image_size))
        except AlignmentError as err:
            raise AlignmentError(f"{meta.image_path(i)}: {err}") from err
    return np.stack(faces)


def embed_meta(network, batch_size, meta, image_size, chunk=1024, log_every=30.0):
    """(orig, flip) embeddings of every image of ``meta`` in order, aligned to ``image_size``."""
    total = len(meta.images)
    orig, flip = [], []
    start = last = time.time()
    for first in range(0, total, chunk):
        faces = aligned_faces(meta, range(first, min(first + chunk, total)), image_size)
        o, f = embed_images(network, faces, batch_size, log_every=0)
        orig.append(o)
        flip.append(f)
        done, now = min(first + chunk, total), time.time()
        if now - last >= log_every or done == total:
            rate = done / max(now - start, 1e-9)
            LOG.info(
                "IJB: embedded %d/%d images (+ flips), %.1f img/s, ETA %s",
                done,
                total,
                rate,
                format_duration((total - done) / rate),
            )
            last = now
    return np.concatenate(orig), np.concatenate(flip)


def save_features(path, meta, orig, flip):
    np.savez(path, names=np.array(meta.images), orig=orig, flip=flip)


def load_features(path, meta):
    """(orig, flip) saved by ``save_features`` for the same images."""
    try:
        with np.load(path, allow_pickle=False) as data:
            names, orig, flip = data["names"].tolist(), data["orig"], data["flip"]
    except (OSError, KeyError, ValueError) as err:
        raise IJBFormatError(f"{path}: not an IJB features file (names, orig, flip): {err}") from err
    if names != meta.images:
        raise IJBFormatError(
            f"{path}: its {len(names)} images are not the {len(meta.images)} images of {meta.root} in order"
        )
    return orig, flip


def evaluate_features(meta, orig, flip, use_flip=True, use_detector_score=True):
    """The IJB record of image embeddings: 1:1 (when the pairs were read) and 1:N (when the lists were read);
    also returns the 1:1 scores."""
    features = image_features(orig, flip, meta.scores, use_flip, use_detector_score)
    ids, feats = template_features(features, meta.templates, meta.medias)
    record = {
        "set": meta.name,
        "images": len(meta.images),
        "templates": len(ids),
        "flip": use_flip,
        "detector_score": use_detector_score,
        "protocols": PROTOCOLS,
    }
    scores = None
    if meta.pairs is not None:
        record["1:1"], scores, _ = verification(ids, feats, meta.pairs)
    if meta.probes is not None:
        record["1:N"] = identification_all(ids, feats, meta.galleries, meta.probes)
    return record, scores


def ijb_table(record):
    """The 1:1 TARs and the 1:N figures as text (percent; '-' where the set cannot resolve it)."""

    def cell(value):
        return "-" if value is None else f"{100 * value:.2f}"

    lines = []
    if "1:1" in record:
        tars = [k for k in record["1:1"] if k.startswith("tar@")]
        lines.append(
            f"{record['set']} 1:1 ({record['1:1']['pairs']} pairs)  "
            + "  ".join(f"TAR@FAR={k.split('=')[1]}: {cell(record['1:1'][k])}" for k in tars)
            + f"  AUC: {cell(record['1:1']['auc'])}"
        )
    if "1:N" in record:
        for gallery, values in record["1:N"].items():
            lines.append(
                f"{record['set']} 1:N {gallery:<4} "
                + "  ".join(
                    f"{k.replace('tpir@fpir=', 'TPIR@FPIR=')}: {cell(v)}"
                    for k, v in values.items()
                    if k.startswith(("rank-", "tpir@"))
                )
            )
    return "\n".join(lines)
