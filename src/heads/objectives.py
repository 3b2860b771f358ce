"""From logits to the loss and the training accuracy, over all classes or over this worker's slice of them.

One implementation serves replicated and sharded centres: every sum over the class axis goes through
``WorkerSum`` and the max through ``WorkerMax`` (the identity with one worker), so the softmax normaliser, the
target logit and the binary losses of a sharded head are assembled across workers (see ``collectives``).
"""

from mindspore import nn, ops

from src.heads.collectives import WorkerMax, WorkerSum


class SoftmaxCrossEntropy(nn.Cell):
    """mean_i [(1 - e) (log Z_i - z_iy) + e (log Z_i - mean_j z_ij)], Z_i = sum_j exp(z_ij) over all classes
    (``classes``: their number), e the label smoothing; computed with z shifted by its max over all classes."""

    def __init__(self, workers, label_smoothing, classes):
        super().__init__()
        self.sum, self.max = WorkerSum(workers), WorkerMax(workers)
        self.label_smoothing, self.classes = label_smoothing, classes

    def construct(self, logits, one_hot):
        shifted = logits - self.max(logits.max(axis=1)).expand_dims(1)
        log_z = ops.log(self.sum(ops.exp(shifted).sum(axis=1)))
        loss = log_z - self.sum((one_hot * shifted).sum(axis=1))
        if self.label_smoothing > 0:
            uniform = log_z - self.sum(shifted.sum(axis=1)) / self.classes
            loss = (1.0 - self.label_smoothing) * loss + self.label_smoothing * uniform
        return loss.mean()


class BinaryCrossEntropy(nn.Cell):
    """One-vs-all: mean_i sum_j w_ij log(1 + exp(-(2 t_ij - 1) z_ij)), t the one-hot label, w = ``positive`` on
    the target and ``negative`` elsewhere (no normalisation across classes)."""

    def __init__(self, workers, positive, negative):
        super().__init__()
        self.sum = WorkerSum(workers)
        self.positive, self.negative = positive, negative

    def construct(self, logits, one_hot):
        signed = (2.0 * one_hot - 1.0) * logits
        loss = ops.relu(-signed) + ops.log1p(ops.exp(-ops.abs(signed)))
        weight = self.negative + (self.positive - self.negative) * one_hot
        return self.sum((weight * loss).sum(axis=1)).mean()


class Accuracy(nn.Cell):
    """Fraction of samples whose true class has the largest score over all classes (read from cos(theta), not
    the margin logits)."""

    def __init__(self, workers):
        super().__init__()
        self.sum, self.max = WorkerSum(workers), WorkerMax(workers)

    def construct(self, scores, one_hot):
        scores = ops.stop_gradient(scores)
        best = self.max(scores.max(axis=1))
        target = self.sum((one_hot * scores).sum(axis=1))
        return (target >= best).astype(scores.dtype).mean()


def build_objective(margin, workers, label_smoothing, classes):
    """The loss cell for ``margin.objective`` (label smoothing applies to the softmax cross entropy only)."""
    if margin.objective == "binary":
        return BinaryCrossEntropy(workers, margin.positive_weight, margin.negative_weight)
    return SoftmaxCrossEntropy(workers, label_smoothing, classes)
