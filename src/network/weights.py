"""Loading backbone weights from a training checkpoint (parameters prefixed ``backbone.``) or from a bare backbone
checkpoint (e.g. one converted from PyTorch)."""
import os

import mindspore as ms

PREFIX = "backbone."


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the network; the message names the parameter."""


def backbone_parameters(checkpoint_path):
    """{name: Parameter} of the backbone stored in ``checkpoint_path``."""
    if not os.path.isfile(checkpoint_path):
        raise FileNotFoundError(f"checkpoint not found: {checkpoint_path}")
    params = ms.load_checkpoint(checkpoint_path)
    if any(name.startswith(PREFIX) for name in params):
        return {name[len(PREFIX):]: p for name, p in params.items() if name.startswith(PREFIX)}
    return params


def load_backbone_weights(backbone, checkpoint_path):
    """Fill every parameter of ``backbone`` from the checkpoint; a missing, extra or mis-shaped parameter raises
    ``CheckpointMismatchError`` naming it."""
    params = backbone_parameters(checkpoint_path)
    own = {p.name: p for p in backbone.get_parameters()}
    for name, param in own.items():
        if name not in params:
            raise CheckpointMismatchError(f"{checkpoint_path}: no value for parameter '{name}' "
                                          f"(a checkpoint of another backbone?)")
        if tuple(params[name].shape) != tuple(param.shape):
            raise CheckpointMismatchError(f"{checkpoint_path}: parameter '{name}' has shape "
                                          f"{tuple(params[name].shape)}, the network expects {tuple(param.shape)}")
    extra = sorted(set(params) - set(own))
    if extra:
        raise CheckpointMismatchError(f"{checkpoint_path}: parameter '{extra[0]}' is not in the network "
                                      f"({len(extra)} unexpected in all)")
    ms.load_param_into_net(backbone, params, strict_load=True)
    return backbone
