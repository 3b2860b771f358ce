"""The models evaluation and inference run: a checkpoint, every checkpoint of a folder, or an exported MINDIR."""
import glob
import json
import os
import re

import mindspore as ms
from mindspore import nn

from src.network import build_backbone_from_config
from src.network.weights import load_backbone_weights


def _natural_key(path):
    """Sort key that orders ``net-900.ckpt`` before ``net-1000.ckpt``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", os.path.basename(path))]


def model_files(path):
    """The checkpoint or MINDIR files ``path`` names: itself, or every ``.ckpt`` in a folder (natural order)."""
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "*.ckpt")), key=_natural_key)
        if not files:
            raise FileNotFoundError(f"no .ckpt files in {path}")
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint or MINDIR not found: {path}")
    return [path]


def mindir_batch_size(path, image_size, default):
    """The batch size of an exported network, from the ``<file>.json`` that export.py writes beside it (checking
    that its input size is ``image_size``); ``default`` when there is no such file or its batch is dynamic."""
    sidecar = path + ".json"
    if not os.path.isfile(sidecar):
        return default
    with open(sidecar, "r", encoding="utf-8") as f:
        shape = json.load(f).get("input_shape")
    if shape is None:
        return default
    if list(shape[2:]) != list(image_size):
        raise ValueError(f"{sidecar}: the exported network takes {shape[2]}x{shape[3]} inputs, the config's "
                         f"image_size is {image_size[0]}x{image_size[1]}")
    return shape[0] if isinstance(shape[0], int) and shape[0] > 0 else default


def load_network(cfg, path):
    """(network in eval mode, the batch size to feed it): a MINDIR as ``nn.GraphCell`` (at its exported batch
    size), or the configured backbone with the checkpoint's weights (at ``eval_batch_size``)."""
    if path.endswith(".mindir"):
        batch = mindir_batch_size(path, cfg.image_size, cfg.export_batch_size)
        return nn.GraphCell(ms.load(path)), batch
    backbone = load_backbone_weights(build_backbone_from_config(cfg), path)
    backbone.set_train(False)
    return backbone, cfg.eval_batch_size
