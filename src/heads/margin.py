"""The base of every margin: declared parameters, the objective its logits feed, and the shared helpers."""

from typing import ClassVar

import mindspore as ms
from mindspore import nn, ops

from src.heads.collectives import ScaleGradient


class Margin(nn.Cell):
    """``(cos, one_hot, norms) -> logits`` for one slice of the classes.

    ``cos`` is cos(theta) of the batch against the centres (B x C', C' all classes or this worker's slice),
    ``one_hot`` the hard label as a float row over the same C' columns (all zero when the sample's class is on
    another worker), ``norms`` the feature norms ||x|| (B x 1, used by the margins whose ``uses_norms`` is True).
    Every formula is elementwise in the class axis, so it is the same on sharded centres.

    ``PARAMS`` declares the margin's parameters (the sub-keys of the config's ``head`` block), each with type,
    default and help, as in config_schema.yaml; they become attributes. ``objective`` is ``softmax`` (cross
    entropy over the classes) or ``binary`` (one-vs-all, SphereFace2, with ``positive_weight`` on the target and
    ``negative_weight`` on the others); the loss is multiplied by ``loss_weight``. ``normalised_centres`` False
    (the softmax baseline) asks for W x + b instead of cos(theta).
    """

    PARAMS: ClassVar[dict] = {}
    normalised_centres = True
    uses_norms = False
    objective = "softmax"
    positive_weight = negative_weight = 1.0

    def __init__(self, num_classes, **params):
        super().__init__()
        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no parameter '{unknown[0]}'; it takes: {', '.join(self.PARAMS) or 'none'}"
            )
        self.num_classes = num_classes
        for name, spec in self.PARAMS.items():
            setattr(self, name, params.get(name, spec["default"]))
        self.shared = ScaleGradient(1.0)

    @property
    def loss_weight(self):
        return 1.0

    def share_across(self, workers):
        """Called by a sharded head: a trainable Parameter of the margin (replicated on every worker, like the
        backbone) gets its gradient from this worker's classes only, so it is scaled by the worker count before
        the data-parallel mean, as the embeddings' gradients are."""
        self.shared = ScaleGradient(float(workers))

    def batch_statistics(self, workers):
        """Called by a replicated head under data parallel: statistics of the batch (AdaFace) are taken over the
        global batch. Margins without batch statistics ignore it."""


def detached_offset(cos, target):
    """``cos + stop_gradient(target - cos)``: the value of ``target`` with the gradient of ``cos`` (the
    "characteristic gradient detachment" of SphereFace2 / SphereFace-R)."""
    return cos + ops.stop_gradient(target - cos)


def one_hot_rows(label, columns, dtype=ms.float32):
    return ops.one_hot(label, columns, ops.ones((), dtype), ops.zeros((), dtype))
