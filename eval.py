"""Pair verification of a checkpoint, every checkpoint in a folder, or an exported MINDIR.

    python eval.py --config_path CONFIG --ckpt_file CKPT_FILE_OR_DIR_OR_MINDIR \
        --eval_pairs pairs.txt --eval_root IMAGES [--eval_landmarks LANDMARKS] [--fusion concat]

Prints ``LFWACC=0.xxxx std=0.xxxx thd=0.xxxx`` (10-fold protocol) per model and writes every metric as JSON.
"""
import glob
import json
import logging
import os
import sys

import mindspore as ms
from mindspore import nn

from src.eval.pairs import drop_missing_images, read_pairs
from src.eval.verify import evaluate_network, load_pair_images
from src.model_utils.config import load_config
from src.model_utils.device import init_device
from src.model_utils.logger import setup_logging
from src.network import build_backbone_from_config
from src.network.weights import load_backbone_weights

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sphereface_config.yaml")
LOG = logging.getLogger("facerec.eval")


def model_files(path):
    """The checkpoint or MINDIR files ``path`` names: itself, or every ``.ckpt`` in a folder (sorted)."""
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "*.ckpt")))
        if not files:
            raise FileNotFoundError(f"no .ckpt files in {path}")
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint or MINDIR not found: {path}")
    return [path]


def load_network(cfg, path):
    """A MINDIR as ``nn.GraphCell``, or the configured backbone with the checkpoint's weights, in eval mode."""
    if path.endswith(".mindir"):
        return nn.GraphCell(ms.load(path))
    backbone = load_backbone_weights(build_backbone_from_config(cfg), path)
    backbone.set_train(False)
    return backbone


def accuracy_line(result):
    return f"LFWACC={result['accuracy']:.4f} std={result['std']:.4f} thd={result['threshold']:.4f}"


def evaluate(cfg):
    init_device(cfg)
    setup_logging()
    for key in ("ckpt_file", "eval_pairs"):
        if getattr(cfg, key) is None:
            raise ValueError(f"config key '{key}' is not set")
    pair_set, missing = drop_missing_images(read_pairs(cfg.eval_pairs, cfg.eval_root, cfg.eval_image_ext))
    for relpath in missing:
        LOG.warning("image not found, its pairs are skipped: %s", os.path.join(cfg.eval_root, relpath))
    LOG.info("%d pairs, %d images from %s", len(pair_set.issame), len(pair_set.relpaths), cfg.eval_pairs)
    images = load_pair_images(pair_set, cfg.image_size, cfg.eval_landmarks)
    results = {}
    for path in model_files(cfg.ckpt_file):
        network = load_network(cfg, path)
        batch = cfg.export_batch_size if path.endswith(".mindir") else cfg.eval_batch_size
        result, _ = evaluate_network(network, images, pair_set, batch, cfg.fusion)
        result.update({"model": path, "fusion": cfg.fusion, "pairs": cfg.eval_pairs,
                       "num_pairs": int(len(pair_set.issame)), "missing_images": missing})
        results[path] = result
        print(f"{os.path.basename(path)}: {accuracy_line(result)} auc={result['auc']:.4f}", flush=True)
    if len(results) > 1:
        best = max(results, key=lambda p: results[p]["accuracy"])
        print("best: " + os.path.basename(best) + " " + accuracy_line(results[best]), flush=True)
    folder = cfg.ckpt_file if os.path.isdir(cfg.ckpt_file) else os.path.dirname(os.path.abspath(cfg.ckpt_file))
    output = cfg.eval_output or os.path.join(folder, "eval_result.json")
    with open(output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    LOG.info("metrics written to %s", output)
    return results


def main(argv=None):
    evaluate(load_config(argv, description=__doc__, default_config=DEFAULT_CONFIG))


if __name__ == "__main__":
    sys.exit(main())
