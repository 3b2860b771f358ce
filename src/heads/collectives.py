"""Collectives with the gradients Partial FC needs, written as cells with an explicit ``bprop``.

Every worker of a sharded head computes the same loss (over the global batch) from its slice of the classes. Its
automatic gradient is then the gradient of that loss through its own slice only, and these cells turn it into
the right quantity for the data-parallel step (``src/train/grad_reduce.py``, gradients averaged over workers):

* ``WorkerSum``: AllReduce(sum) forward, identity backward: each worker's addend affects the (identical) loss of
  every worker through the sum, so d loss / d addend = d loss / d sum, locally.
* ``GatherBatch``: AllGather of the embeddings forward; backward: the sum over workers of the gradients of the
  worker's own rows (each worker holds the part through its classes), times the worker count, which the
  data-parallel mean of the backbone's gradients then divides away. MindSpore's own AllGather backward
  (a ReduceScatter, divided by the worker count under ``gradients_mean``) would leave the backbone's gradient
  1/N^2 of the sum it must be; and the CPU backend has no ReduceScatter, so there the sum is an AllReduce and a
  slice.
* ``worker_max``: the max over workers (AllGather + max: the CPU backend's AllReduce only sums), no gradient.

With one worker every cell is the identity.
"""

import mindspore as ms
from mindspore import nn, ops
from mindspore.ops import ReduceOp


class ScaleGradient(nn.Cell):
    """Identity forward; the gradient times ``factor``."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def construct(self, x):
        return x

    def bprop(self, x, out, dout):
        return (dout * self.factor,)


class WorkerSum(nn.Cell):
    """Sum of ``x`` over the workers; the gradient passes through unchanged (see the module docstring)."""

    def __init__(self, workers):
        super().__init__()
        self.workers = workers
        self.allreduce = ops.AllReduce() if workers > 1 else None

    def construct(self, x):
        if self.workers > 1:
            return self.allreduce(x)
        return x

    def bprop(self, x, out, dout):
        return (dout,)


class WorkerMax(nn.Cell):
    """Elementwise max of ``x`` over the workers (no gradient: used for numerical stability only)."""

    def __init__(self, workers):
        super().__init__()
        self.workers = workers
        self.gather = ops.AllGather() if workers > 1 else None

    def construct(self, x):
        x = ops.stop_gradient(x)
        if self.workers > 1:
            return self.gather(x.expand_dims(0)).max(axis=0)
        return x


class GatherBatch(nn.Cell):
    """(B, ...) rows of every worker -> (N B, ...) in rank order; gradient as in the module docstring."""

    def __init__(self, workers, rank, rows, gradient_scale):
        super().__init__()
        self.workers, self.rank, self.rows, self.gradient_scale = workers, rank, rows, gradient_scale
        if workers > 1:
            self.gather = ops.AllGather()
            self.use_reduce_scatter = ms.get_context("device_target") != "CPU"
            self.reduce_scatter = ops.ReduceScatter(ReduceOp.SUM) if self.use_reduce_scatter else None
            self.allreduce = ops.AllReduce()

    def construct(self, x):
        if self.workers > 1:
            return self.gather(x)
        return x

    def bprop(self, x, out, dout):
        if self.workers == 1:
            return (dout * self.gradient_scale,)
        if self.use_reduce_scatter:
            own = self.reduce_scatter(dout)
        else:
            own = self.allreduce(dout)[self.rank * self.rows : (self.rank + 1) * self.rows]
        return (own * self.gradient_scale,)


class GatherLabels(nn.Cell):
    """The labels of every worker's batch, in rank order (no gradient)."""

    def __init__(self, workers):
        super().__init__()
        self.workers = workers
        self.gather = ops.AllGather() if workers > 1 else None

    def construct(self, label):
        if self.workers > 1:
            return self.gather(label)
        return label
