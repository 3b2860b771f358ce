"""The models evaluation and inference run: a checkpoint, every checkpoint of a folder, or an exported MINDIR."""

import glob
import os
import re

from src.eval.exported import load_mindir
from src.eval.mindir_info import is_mindir
from src.eval.sidecar import read_record, sidecar_path
from src.kernels.accelerate import accelerate
from src.model_utils.config import ConfigError
from src.network import build_backbone_from_config
from src.network.fold_bn import fold_batch_norms
from src.network.weights import DIVERGED_SUFFIX, load_backbone_weights


def _natural_key(path):
    """Sort key that orders ``net-900.ckpt`` before ``net-1000.ckpt``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", os.path.basename(path))]


def model_files(path):
    """The checkpoint or MINDIR files ``path`` names: itself, or every ``.ckpt`` in a folder (natural order) but
    those training set aside as diverged (``step_N.diverged.ckpt``)."""
    if os.path.isdir(path):
        files = sorted(
            (p for p in glob.glob(os.path.join(path, "*.ckpt")) if not p.endswith(DIVERGED_SUFFIX)), key=_natural_key
        )
        if not files:
            raise FileNotFoundError(f"no .ckpt files in {path}")
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint or MINDIR not found: {path}")
    return [path]


def mindir_batch_size(path, cfg):
    """The batch size to feed an exported network: its fixed batch from the ``<file>.json`` export.py writes
    beside it (whose input size must be ``image_size``), ``eval_batch_size`` when that batch is dynamic, and
    ``export_batch_size`` when there is no such file."""
    record = read_record(path)
    shape = None if record is None else record.get("input_shape")
    if shape is None:
        return cfg.export_batch_size
    if list(shape[2:]) != list(cfg.image_size):
        raise ConfigError(
            f"config key 'image_size': {cfg.image_size[0]}x{cfg.image_size[1]}, but the exported "
            f"network takes {shape[2]}x{shape[3]} inputs ({sidecar_path(path)})"
        )
    return shape[0] if isinstance(shape[0], int) and shape[0] > 0 else cfg.eval_batch_size


def load_network(cfg, path):
    """(network in eval mode, the batch size to feed it): a MINDIR (known by its content, whatever its extension) as
    ``nn.GraphCell`` (at its exported batch size), or the configured backbone with the checkpoint's weights (at
    ``eval_batch_size``), its BatchNorms folded into the layers before them when ``fold_bn``, then the CPU kernels
    applied as ``cpu_kernels`` says."""
    if is_mindir(path):
        return load_mindir(path), mindir_batch_size(path, cfg)
    backbone = load_backbone_weights(build_backbone_from_config(cfg), path, cfg.backbone)
    if cfg.fold_bn:
        fold_batch_norms(backbone)
    backbone.set_train(False)
    return accelerate(backbone, cfg.cpu_kernels, cfg.device_target), cfg.eval_batch_size
