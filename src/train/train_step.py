"""One optimisation step: forward + backward once, mean gradients across ranks, skip non-finite updates."""
import mindspore as ms
from mindspore import nn, ops
from mindspore.communication import get_group_size
from mindspore.context import ParallelMode


def is_data_parallel():
    return ms.get_auto_parallel_context("parallel_mode") in (ParallelMode.DATA_PARALLEL,
                                                              ParallelMode.HYBRID_PARALLEL)


class TrainStep(nn.Cell):
    """(image, label) -> (loss, accuracy, finite).

    The network runs once (``value_and_grad`` with ``has_aux``), so stateful heads (the A-Softmax iteration,
    AdaFace's norm statistics) advance exactly once per step. In data-parallel runs the gradients are averaged
    over ranks. Gradients are optionally clipped by global norm. When the loss or any gradient is not finite the
    update is skipped (``finite`` is False) and the caller decides what to do.

    The check is one ``isfinite`` of loss + sum_i sum(g_i): a NaN or Inf anywhere propagates into that sum (Inf - Inf
    is NaN). ``isfinite(g).all()`` per gradient gives the same answer but costs ~240 ms per step for sphere20a +
    a 10,575-class head on 2 CPU threads against ~2-10 ms (benchmarks/bench_ops.py, case ``finite_check``).
    """

    def __init__(self, network, optimizer, clip_grad_norm=0.0):
        super().__init__(auto_prefix=False)
        self.network, self.optimizer = network, optimizer
        self.weights = optimizer.parameters
        self.grad_fn = ms.value_and_grad(self.network, None, self.weights, has_aux=True)
        self.clip_grad_norm = clip_grad_norm
        self.reducer = nn.Identity()
        if is_data_parallel():
            self.reducer = nn.DistributedGradReducer(self.weights, mean=True, degree=get_group_size())

    def construct(self, image, label):
        (loss, accuracy), grads = self.grad_fn(image, label)
        grads = self.reducer(grads)
        finite = ops.isfinite(ops.addn([loss] + [grad.sum() for grad in grads]))
        if self.clip_grad_norm > 0:
            grads = ops.clip_by_global_norm(grads, self.clip_grad_norm)
        if finite:
            loss = ops.depend(loss, self.optimizer(grads))
        return loss, accuracy, finite
