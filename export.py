"""Export the embedding network (backbone only, no classifier) for inference.

    python export.py --config_path CONFIG --ckpt_file CKPT [--file_format MINDIR|ONNX|AIR] [--export_batch_size N]

The input is the normalised RGB tensor (N, 3, H, W), (x - 127.5) / 128; the output the raw embedding. A sidecar
``<file>.json`` records the preprocessing and the embedding size. AIR needs the Ascend backend.
"""
import json
import logging
import os
import sys

import mindspore as ms
import numpy as np

from src.data.alignment import template_for
from src.data.preprocess import CHANNEL_ORDER, MEAN, SCALE
from src.model_utils.config import load_config
from src.model_utils.device import init_device
from src.model_utils.logger import setup_logging
from src.network import build_backbone_from_config
from src.network.weights import load_backbone_weights

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sphereface_config.yaml")
EXTENSIONS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
LOG = logging.getLogger("facerec.export")


def export_name(cfg):
    height, width = cfg.image_size
    return cfg.file_name or f"{cfg.backbone}_{height}x{width}_b{cfg.export_batch_size}"


def preprocessing_record(cfg):
    """What a deployer needs to feed the exported network."""
    height, width = cfg.image_size
    return {"backbone": cfg.backbone, "input_shape": [cfg.export_batch_size, 3, height, width],
            "input_layout": "NCHW", "channel_order": CHANNEL_ORDER, "mean": MEAN, "scale": SCALE,
            "normalisation": "(x - mean) * scale", "embedding_size": cfg.embedding_size,
            "alignment_template": template_for(cfg.image_size).round(4).tolist(),
            "file_format": cfg.file_format}


def export(cfg):
    if cfg.file_format == "AIR" and cfg.device_target != "Ascend":
        raise ValueError("file_format AIR can only be exported with device_target Ascend (MindSpore writes AIR only "
                         "on the Ascend backend); use MINDIR or ONNX here")
    if cfg.ckpt_file is None:
        raise ValueError("config key 'ckpt_file' is not set: give the checkpoint to export")
    init_device(cfg)
    setup_logging()
    backbone = load_backbone_weights(build_backbone_from_config(cfg), cfg.ckpt_file)
    backbone.set_train(False)
    height, width = cfg.image_size
    dummy = ms.Tensor(np.zeros((cfg.export_batch_size, 3, height, width), np.float32))
    base = export_name(cfg)
    ms.export(backbone, dummy, file_name=base, file_format=cfg.file_format)
    path = base + EXTENSIONS[cfg.file_format]
    with open(path + ".json", "w", encoding="utf-8") as f:
        json.dump(preprocessing_record(cfg), f, indent=2)
    LOG.info("exported %s (+ %s.json)", path, path)
    print(path, flush=True)
    return path


def main(argv=None):
    export(load_config(argv, description=__doc__, default_config=DEFAULT_CONFIG))


if __name__ == "__main__":
    sys.exit(main())
