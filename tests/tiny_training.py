"""Tiny training runs for the training tests: the digits demo data (src/data/digits.py) cut to 16 images per
training class (7 classes, 112 images: 7 whole global batches of 16 on 1 or 2 workers), and the arguments of a
sphere4 (width 0.125, 32x32 inputs) + A-Softmax run on the CPU in GRAPH mode, in MindSpore's own layers (cpu_kernels
off: what GPU and Ascend run; tests/test_cpu_kernels.py trains through the kernels)."""

import os
import sys

import mindspore as ms
import numpy as np

from src.data.digits import prepare_digits
from src.model_utils.config import flow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
TINY = {
    "device_target": "CPU",
    "cpu_kernels": "off",
    "mode": "GRAPH",
    "seed": 3,
    "image_size": "[32,32]",
    "backbone": "sphere4",
    "backbone_width": 0.125,
    "embedding_size": 16,
    "head": "{type: asoftmax, m: 2}",
    "batch_size": 8,
    "num_workers": 1,
    "random_flip": "true",
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "lr_schedule": "cosine",
    "warmup_steps": 5,
    "log_interval": 1,
    "keep_checkpoints": 3,
    "eval_batch_size": 64,
    "fusion": "orig",
}
# A tiny evaluation / inference / export network (sphere4 at width 0.125, 32x32 inputs; device and model keys, which
# eval.py, infer.py and export.py all take); files append their own keys (a later --key wins).
TINY_EVAL = [
    "--device_target=CPU",
    "--cpu_kernels=off",
    "--config_path=",
    "--backbone=sphere4",
    "--backbone_width=0.125",
    "--embedding_size=8",
    "--image_size=[32, 32]",
]


def digits_subset(folder, per_class=16):
    """Write the digits data into ``folder``; returns its paths with ``train_list`` cut to ``per_class`` images
    per class."""
    paths = prepare_digits(folder)
    kept, counts = [], {}
    with open(paths["train_list"], encoding="utf-8") as f:
        for line in f:
            label = line.split()[1]
            counts[label] = counts.get(label, 0) + 1
            if counts[label] <= per_class:
                kept.append(line)
    small = os.path.join(folder, "train_small.txt")
    with open(small, "w", encoding="utf-8") as f:
        f.writelines(kept)
    return dict(paths, train_list=small)


def tiny_args(data, output_dir, **overrides):
    """``--key=value`` arguments of a tiny run on ``data`` (from ``digits_subset``) writing to ``output_dir``."""
    values = dict(
        TINY,
        train_list=data["train_list"],
        train_root=data["train_root"],
        output_dir=output_dir,
    )
    values.update(overrides)
    return [f"--{key}={value}" for key, value in values.items()]


def load_params(path):
    """{name: numpy array} of the Parameters in a checkpoint (the ``run.*`` state values left out)."""
    return {
        name: value.asnumpy()
        for name, value in ms.load_checkpoint(path).items()
        if not isinstance(value, str) and not name.startswith("run.")
    }


def max_difference(first, second):
    """Largest absolute difference between two ``load_params`` results with the same names."""
    assert sorted(first) == sorted(second)
    return max(float(np.max(np.abs(first[k].astype(np.float64) - second[k]))) if first[k].size else 0.0 for k in first)


def write_config(path, data, output_dir, **overrides):
    """The tiny run as a YAML config file (for train.py --config_path and the launch scripts)."""
    lines = [arg[2:].replace("=", ": ", 1) for arg in tiny_args(data, output_dir, **overrides)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def digits_targets(digits):
    """``val_targets`` (YAML text) of the digits' held-out pairs (``digits`` from ``prepare_digits``)."""
    return flow([{"pairs": digits["eval_pairs"], "root": digits["eval_root"], "image_ext": ".png"}])


def eval_args(digits, model, output, *extra):
    """eval.py's arguments for ``model`` on the digits' held-out pairs (from ``prepare_digits``), JSON to ``output``."""
    return [
        f"--ckpt_file={model}",
        f"--val_targets={digits_targets(digits)}",
        "--eval_batch_size=32",
        f"--eval_output={output}",
        *extra,
    ]
