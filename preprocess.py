"""Pairs of faces -> the float32 input files of the inference harness (ascend310_infer/face_infer or
tools/mindir_infer.py), laid out as it reads them, and the pair list postprocess.py scores.

    python preprocess.py --val_targets '[{pairs: pairs.txt, root: IMAGES, landmarks: LANDMARKS}]' \
        --infer_input_dir DIR [--model_info MODEL.json | --image_size [112,96]] [--config_path CONFIG]

Every image of the pairs file is decoded and aligned exactly as eval.py does it (5-point landmarks, or an
already aligned folder fitted to image_size by the item's fit), then written twice as raw float32 C x H x W, RGB,
(x - 127.5) / 128: ``DIR/orig/NNNNNN.bin`` and its horizontal mirror ``DIR/flip/NNNNNN.bin`` (the flip that
eval.py fuses). ``DIR/index.txt`` lists all of them, ``DIR/pairs.json`` the images, pairs, same/different labels
and folds. ``model_info``, the sidecar JSON export.py writes beside the model, sets the input size and is checked
to ask for this preprocessing.
"""

import json
import logging
import os
import sys

from src.data.image_io import CHANNEL_ORDER, MEAN, SCALE, to_input
from src.deploy.bin_layout import INDEX_FILE, write_array, write_index
from src.deploy.pair_record import PAIRS_FILE, write_pair_record
from src.eval.pair_images import load_pair_images
from src.eval.sources import read_pair_set
from src.eval.targets import targets_from_config
from src.model_utils.cli import run_main
from src.model_utils.config import DEFAULT_CONFIG, ConfigError, load_config
from src.model_utils.logger import setup_logging

LOG = logging.getLogger("facerec.preprocess")


def input_size_from_sidecar(path):
    """The (height, width) the exported model takes, after checking it wants this package's preprocessing."""
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    expected = {"channel_order": CHANNEL_ORDER, "mean": MEAN, "scale": SCALE, "input_layout": "NCHW"}
    for key, value in expected.items():
        if record.get(key) != value:
            raise ValueError(f"{path}: the model wants {key}={record.get(key)!r}; preprocess.py writes {value!r}")
    return list(record["input_shape"][2:])


def image_names(count):
    """(orig names, flip names) of ``count`` images, numbered in the pair set's image order."""
    return [f"orig/{i:06d}.bin" for i in range(count)], [f"flip/{i:06d}.bin" for i in range(count)]


def one_target(cfg):
    """The one pair set of ``cfg.val_targets`` preprocess.py writes out."""
    targets = targets_from_config(cfg)
    if len(targets) != 1:
        raise ConfigError(f"config key 'val_targets': preprocess.py writes one pair set, got {len(targets)}")
    return targets[0]


def preprocess(cfg):
    setup_logging()
    if cfg.infer_input_dir is None:
        raise ConfigError("config key 'infer_input_dir' is not set")
    target = one_target(cfg)
    image_size = input_size_from_sidecar(cfg.model_info) if cfg.model_info else list(cfg.image_size)
    pair_set = read_pair_set(target.pairs, target.format, target.root, target.image_ext)
    LOG.info(
        "%d pairs, %d images from %s; inputs %dx%d",
        len(pair_set.issame),
        len(pair_set.relpaths),
        target.pairs,
        *image_size,
    )
    images = load_pair_images(pair_set, image_size, target.landmarks, target.fit)
    orig_names, flip_names = image_names(len(images))
    out = cfg.infer_input_dir
    os.makedirs(out, exist_ok=True)
    for stale in (INDEX_FILE, PAIRS_FILE):
        if os.path.exists(os.path.join(out, stale)):
            os.remove(os.path.join(out, stale))
    for image, orig, flip in zip(images, orig_names, flip_names):
        write_array(os.path.join(out, orig), to_input(image))
        write_array(os.path.join(out, flip), to_input(image[:, ::-1]))
    record = {
        "pairs_file": os.path.abspath(target.pairs),
        "image_root": os.path.abspath(target.root),
        "landmarks": target.landmarks and os.path.abspath(target.landmarks),
        "image_size": image_size,
        "preprocessing": {"channel_order": CHANNEL_ORDER, "mean": MEAN, "scale": SCALE, "layout": "CHW"},
        "images": pair_set.relpaths,
        "orig": orig_names,
        "flip": flip_names,
        "first": pair_set.first.tolist(),
        "second": pair_set.second.tolist(),
        "issame": pair_set.issame.tolist(),
        "folds": pair_set.folds.tolist(),
    }
    # Written last: an index and pair list exist only for a finished run.
    write_pair_record(out, record)
    write_index(out, orig_names + flip_names, f"{len(images)} images of {target.pairs} and their mirror images")
    LOG.info("wrote %d inputs (%d x %s float32) to %s", 2 * len(images), 3, "x".join(map(str, image_size)), out)
    return record


def main(argv=None):
    preprocess(load_config(argv, description=__doc__, default_config=DEFAULT_CONFIG, entry="preprocess"))


if __name__ == "__main__":
    sys.exit(run_main(main))
