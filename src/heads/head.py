"""A head on replicated class centres, and the builders from names and from the config's ``head`` block."""
from __future__ import annotations

from typing import Any

from mindspore import nn

from src.heads.registry import MARGINS
from src.heads.centres import ClassCentres, LinearCentres, feature_norm
from src.heads.margin import one_hot_rows
from src.heads.objectives import Accuracy, build_objective
from src.model_utils.config import Config, ConfigError


class Head(nn.Cell):
    """Class centres + margin + objective: ``(embedding, label) -> (loss, accuracy)``; ``logits(x, label)`` gives
    ``(logits, cos)``. The margin applies to the hard label (label smoothing lives in the cross entropy).

    In a training network its Parameters are ``head.centres.weight``, ``head.margin.iteration``, ...
    (``legacy_names`` reads checkpoints written before the split).
    """

    def __init__(self, centres, margin, label_smoothing=0.0):
        super().__init__()
        self.centres, self.margin = centres, margin
        self.num_classes = centres.num_classes
        self.objective = build_objective(margin, 1, label_smoothing, self.num_classes)
        self.loss_weight = margin.loss_weight
        self.accuracy = Accuracy(1)

    def _forward(self, x, label):
        cos = self.centres(x)
        one_hot = one_hot_rows(label, self.num_classes)
        norms = feature_norm(x) if self.margin.uses_norms else None
        return self.margin(cos, one_hot, norms), cos, one_hot

    def logits(self, x, label):
        logits, cos, _ = self._forward(x, label)
        return logits, cos

    def set_train(self, mode=True):
        """Also sets each child's own mode: ``logits``, called outside ``construct``, runs the centres and the
        margin as cells of their own, compiled (in GRAPH mode) by their own train/eval phase."""
        for cell in self.cells():
            cell.set_train(mode)
        return super().set_train(mode)

    def construct(self, x, label):
        logits, cos, one_hot = self._forward(x, label)
        return self.loss_weight * self.objective(logits, one_hot), self.accuracy(cos, one_hot)


# Head Parameters before centres and margins were split -> their names since.
LEGACY = {"head.weight": "head.centres.weight", "head.fc.weight": "head.centres.fc.weight",
          "head.fc.bias": "head.centres.fc.bias", "head.iteration": "head.margin.iteration",
          "head.batch_mean": "head.margin.batch_mean", "head.batch_std": "head.margin.batch_std"}


def legacy_names(entries):
    """Checkpoint ``entries`` with the head Parameters (and their optimizer state, ``accum.head.weight``, ...) of
    checkpoints written before the split renamed to today's names."""
    renamed = {}
    for name, value in entries.items():
        for old, new in LEGACY.items():
            if name == old or name.endswith("." + old):
                name = name[:-len(old)] + new
                break
        renamed[name] = value
    return renamed


def build_head(name: str, embedding_size: int, num_classes: int, label_smoothing: float = 0.0,
               **params: Any) -> nn.Cell:
    """A head on replicated centres, e.g. ``build_head("arcface", embedding_size=512, num_classes=10572, m=0.5)``."""
    margin = MARGINS.get(name)(num_classes, **params)
    centres = (ClassCentres if margin.normalised_centres else LinearCentres)(embedding_size, num_classes)
    return Head(centres, margin, label_smoothing)


def build_head_from_config(cfg: Config, num_classes: int, batch_size: int, data_parallel_workers: int = 1,
                           rank: int = 0) -> nn.Cell:
    """The head of the config's ``head`` block (already validated against the margin's parameters).
    ``batch_size`` is per worker; ``data_parallel_workers`` > 1 when the run is data parallel (gradients
    averaged over the workers): a sharded head then splits its centres over them."""
    block = dict(cfg.head)
    name, sharded, sample_rate = block.pop("type"), block.pop("sharded"), block.pop("sample_rate")
    margin = MARGINS.get(name)(num_classes, **block)
    if not sharded:
        if sample_rate != 1.0:
            raise ConfigError("config key 'head.sample_rate' needs sharded centres: set head.sharded: true")
        margin.batch_statistics(data_parallel_workers)
        centres = (ClassCentres if margin.normalised_centres else LinearCentres)(cfg.embedding_size, num_classes)
        return Head(centres, margin, cfg.label_smoothing)
    if not margin.normalised_centres:
        raise ConfigError(f"config key 'head.sharded': head '{name}' has unnormalised centres (W x + b); "
                         f"sharded centres need a cosine head")
    from src.heads.partial_fc import PartialFCHead
    return PartialFCHead(margin, cfg.embedding_size, num_classes, workers=data_parallel_workers, rank=rank,
                         batch_size=batch_size, sample_rate=sample_rate, seed=cfg.seed,
                         label_smoothing=cfg.label_smoothing)
