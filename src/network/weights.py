"""Loading backbone weights from a training checkpoint (parameters prefixed ``backbone.``) or from a bare backbone
checkpoint (e.g. one converted from PyTorch)."""

import os

import mindspore as ms
import numpy as np

# A checkpoint set aside by a rollback after non-finite steps (src/train/checkpoint.py): never a model to load.
DIVERGED_SUFFIX = ".diverged.ckpt"

PREFIX = "backbone."


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the network; the message names the parameter."""


def backbone_parameters(checkpoint_path):
    """{name: Parameter} of the backbone stored in ``checkpoint_path``."""
    if not os.path.isfile(checkpoint_path):
        raise FileNotFoundError(f"checkpoint not found: {checkpoint_path}")
    params = ms.load_checkpoint(checkpoint_path)
    if any(name.startswith(PREFIX) for name in params):
        return {name[len(PREFIX) :]: p for name, p in params.items() if name.startswith(PREFIX)}
    return params


def check_parameters(expected, params, source, hint="a checkpoint of another backbone?"):
    """``params`` ({name: value}) must hold exactly the names of ``expected`` ({name: shape}) with those shapes;
    else ``CheckpointMismatchError`` naming the first offending parameter and ``source``. A checkpoint whose names
    are mostly not the network's and the other way round (another code base's layer names) is named as such."""
    shared = len(set(expected) & set(params))
    if expected and params and shared < len(expected) / 2 and shared < len(params) / 2:
        raise CheckpointMismatchError(
            f"{source}: {shared} of the network's {len(expected)} parameter names are in it (it has "
            f"{', '.join(sorted(params)[:3])}, ...; the network has {', '.join(sorted(expected)[:3])}, ...): it was "
            f"written by another program, such as the MindSpore 1.x model zoo's sphereface, whose layers are named "
            f"differently; train here or convert it (tools/convert_torch.py converts PyTorch checkpoints)"
        )
    for name, shape in expected.items():
        if name not in params:
            raise CheckpointMismatchError(f"{source}: no value for parameter '{name}' ({hint})")
        if tuple(params[name].shape) != tuple(shape):
            raise CheckpointMismatchError(
                f"{source}: parameter '{name}' has shape {tuple(params[name].shape)}, "
                f"the network expects {tuple(shape)} ({hint})"
            )
    extra = sorted(set(params) - set(expected))
    if extra:
        raise CheckpointMismatchError(
            f"{source}: parameter '{extra[0]}' is not in the network ({len(extra)} unexpected in all)"
        )


def check_finite(params, source):
    """Every value of ``params`` ({name: Parameter}) finite, else ``CheckpointMismatchError`` naming the first
    parameter that is not (the checkpoint of a run that diverged)."""
    for name, value in params.items():
        array = value.asnumpy()
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            count = int(array.size - np.isfinite(array).sum())
            raise CheckpointMismatchError(
                f"{source}: parameter '{name}' holds {count} non-finite value(s) (NaN or "
                f"Inf): the run that wrote it diverged; use an earlier checkpoint"
            )


def load_backbone_weights(backbone, checkpoint_path):
    """Fill every parameter of ``backbone`` from the checkpoint; a missing, extra or mis-shaped parameter raises
    ``CheckpointMismatchError`` naming it."""
    params = backbone_parameters(checkpoint_path)
    check_parameters({p.name: p.shape for p in backbone.get_parameters()}, params, checkpoint_path)
    check_finite(params, checkpoint_path)
    ms.load_param_into_net(backbone, params, strict_load=True)
    return backbone
