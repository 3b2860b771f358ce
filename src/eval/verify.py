"""Pair verification end to end: images of a pair set -> embeddings -> scores -> every metric."""
import logging

from src.data.dataset import prepare_image
from src.data.landmarks import landmarks_for, read_landmarks
from src.data.preprocess import load_rgb
from src.eval.embed import cosine_scores, embed_images, fuse
from src.eval.metrics import roc_metrics
from src.eval.protocol import best_threshold, kfold_accuracy

LOG = logging.getLogger(__name__)


def load_pair_images(pair_set, image_size, landmark_path=None):
    """Decode every image of ``pair_set`` and align it (with landmarks) or resize it to ``image_size``."""
    table = read_landmarks(landmark_path) if landmark_path else None
    images = []
    for relpath, path in zip(pair_set.relpaths, pair_set.paths):
        landmarks = landmarks_for(table, relpath, landmark_path) if table is not None else None
        images.append(prepare_image(load_rgb(path), landmarks, image_size))
    return images


def verification_metrics(features, pair_set):
    """10-fold accuracy (the LFW protocol), best-single-threshold accuracy on all pairs, AUC, EER, TAR@FAR."""
    scores = cosine_scores(features, pair_set.first, pair_set.second)
    result = kfold_accuracy(scores, pair_set.issame, pair_set.folds)
    threshold, accuracy = best_threshold(scores, pair_set.issame)
    result.update({"best_threshold_all_pairs": threshold, "accuracy_best_threshold_all_pairs": accuracy})
    result.update(roc_metrics(scores, pair_set.issame))
    return result, scores


def evaluate_network(network, images, pair_set, batch_size, fusion="concat"):
    """Embed ``images`` (aligned, in ``pair_set`` order) with ``network`` and score the pairs."""
    orig, flip = embed_images(network, images, batch_size)
    return verification_metrics(fuse(orig, flip, fusion), pair_set)
