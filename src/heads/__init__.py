"""Classification heads = class centres + a margin (docs/heads.md).

* Class centres (``src/heads/centres.py``): the cell that holds W and gives cos(theta) of the batch against every
  centre: replicated (``ClassCentres``) or sharded over the workers (``ShardedClassCentres``, the Partial FC
  head of ``src/heads/partial_fc.py``).
* A margin (one file each, registered in ``MARGINS``): a pure function ``(cos, one_hot, [norms]) -> logits``
  written once with its paper's formula, wrapped in a small ``Margin`` cell that declares its parameters (the
  sub-keys of the config's ``head`` block) and holds its state (the A-Softmax iteration, AdaFace's norm
  statistics, the SphereFace2 bias).

A head is configured as one block, ``head: {type: arcface, s: 64, m: 0.5}``; adding a margin is one file.
"""

from src.heads import (  # noqa: F401  (each registers its margin)
    adaface,
    arcface,
    asoftmax,
    cosface,
    linear,
    normface,
    sphereface2,
    spherefacer,
)
from src.heads.head import build_head, build_head_from_config
from src.heads.registry import MARGINS, margin_parameters

__all__ = ["MARGINS", "build_head", "build_head_from_config", "margin_parameters"]
