"""Verification targets: the pair sets a run validates on (train.py) or tabulates (eval.py).

``val_targets`` lists any number of them, each ``{name, pairs, format, root, landmarks, image_ext, fit}`` (see
config_schema.yaml; the retired single-set keys ``val_pairs`` / ``eval_pairs`` with ``eval_root``, ... are read as
one item). One unnamed target is reported as a single pair set; ``load_target`` reads a target's pairs and prepares
its images once.
"""

import logging
import os
from dataclasses import dataclass, replace

import numpy as np

from src.eval.pair_images import load_pair_images
from src.eval.pairs import drop_missing_images
from src.eval.sources import read_pair_set
from src.model_utils.config import ConfigError

LOG = logging.getLogger("facerec.eval")
SELECT_MEAN = "mean"


@dataclass
class Target:
    """One pair set and how to read it; ``name`` is None for one unnamed target (logged without a name)."""

    name: str
    pairs: str
    format: str = "auto"
    root: str = ""
    landmarks: str = None
    image_ext: str = ".jpg"
    fit: str = "template"

    @property
    def label(self):
        return self.name or os.path.splitext(os.path.basename(self.pairs))[0]


@dataclass
class LoadedTarget:
    """A target with its pair set (pairs naming missing images dropped), those missing images, and the prepared
    images (N x H x W x 3 uint8 RGB, in ``pair_set.relpaths`` order)."""

    target: Target
    pair_set: object
    missing: list
    images: np.ndarray


def targets_from_config(cfg):
    """The targets of ``cfg.val_targets``; unnamed ones among several are named after their pairs file. Two
    targets of one name are a ``ConfigError``."""
    targets = [Target(**item) for item in cfg.val_targets]
    if len(targets) > 1:
        targets = [replace(target, name=target.label) for target in targets]
    labels = [t.label for t in targets]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ConfigError(f"config key 'val_targets': two targets are named '{repeated[0]}'; give each a 'name'")
    return targets


def check_select(select, targets):
    """``val_select`` must be 'mean' or the name of one of ``targets``."""
    labels = [t.label for t in targets]
    if select != SELECT_MEAN and select not in labels:
        raise ConfigError(
            f"config key 'val_select': '{select}' is neither '{SELECT_MEAN}' nor a target name ({', '.join(labels)})"
        )


def selection_score(accuracies, select):
    """The number best.ckpt is chosen by: the mean of ``accuracies`` ({label: 10-fold accuracy}) or one of them;
    None when any is None (a failed validation)."""
    if any(value is None for value in accuracies.values()):
        return None
    if select == SELECT_MEAN:
        return float(np.mean(list(accuracies.values())))
    return accuracies[select]


def load_target(target, image_size):
    """Read ``target``'s pair set, drop the pairs naming missing images (logged), prepare its images."""
    pair_set, missing = drop_missing_images(read_pair_set(target.pairs, target.format, target.root, target.image_ext))
    for relpath in missing:
        LOG.warning("%s: image not found, its pairs are skipped: %s", target.label, os.path.join(target.root, relpath))
    LOG.info(
        "%s: %d pairs (%d same), %d images, %d folds from %s",
        target.label,
        len(pair_set),
        pair_set.issame.sum(),
        len(pair_set.relpaths),
        len(set(pair_set.folds.tolist())),
        target.pairs,
    )
    images = load_pair_images(pair_set, image_size, target.landmarks, target.fit)
    return LoadedTarget(target, pair_set, missing, images)
