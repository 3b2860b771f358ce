"""Image embeddings -> template embeddings, the IJB way (as insightface's IJB evaluation): each image's
embedding (orig + flip, summed, when ``flip``) keeps its norm and is optionally weighted by its face detector
score; images of one media (frames of a video) are averaged; a template is the sum of its media, L2-normalised."""

import numpy as np


def image_features(orig, flip, detector_scores, use_flip=True, use_detector_score=True):
    """Per-image features before pooling: orig (+ flip), times the detector score when asked."""
    features = orig + flip if use_flip else orig.copy()
    if use_detector_score:
        features = features * np.asarray(detector_scores, features.dtype)[:, None]
    return features


def template_features(features, templates, medias, wanted=None):
    """(template ids (sorted; ``wanted`` or all), their L2-normalised pooled features): per template, the mean
    feature of each media, summed."""
    ids = np.unique(templates if wanted is None else wanted)
    order = np.argsort(templates, kind="stable")
    sorted_templates = templates[order]
    pooled = np.zeros((len(ids), features.shape[1]), np.float64)
    for row, template in enumerate(ids):
        lo, hi = np.searchsorted(sorted_templates, [template, template + 1])
        members = order[lo:hi]
        for media in np.unique(medias[members]):
            pooled[row] += features[members[medias[members] == media]].mean(axis=0)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return ids, pooled / np.maximum(norms, 1e-12)


def lookup(ids, feats, wanted):
    """Rows of ``feats`` (indexed by sorted ``ids``) for the template ids ``wanted``."""
    return feats[np.searchsorted(ids, wanted)]
