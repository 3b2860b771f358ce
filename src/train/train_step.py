"""One optimisation step: forward + backward once, optional loss scaling, mean gradients across ranks, skip
non-finite updates."""

import mindspore as ms
from mindspore import amp, nn, ops
from mindspore.communication import get_group_size
from mindspore.context import ParallelMode
from mindspore.ops.operations.math_ops import NPUClearFloatStatusV2

from src.heads.partial_fc import sharded_parameters
from src.train.amp import reads_float_status
from src.train.grad_reduce import GradReducer, clip_by_global_norm


def element_sum(tensor):
    """The sum of all of ``tensor``'s elements, non-finite if any element is (the finiteness check's measure).

    Taken as a matrix-vector product with ones, (first axis, the rest) x (the rest,), then summed over the rows:
    MindSpore 2.10's CPU ReduceSum over a whole tensor is slow (the largest operator of a sphere20a step outside the
    convolutions, mostly this check: ``benchmarks/profile_train.py``), the product several times faster.
    An infinity or NaN propagates through the product as through the sum."""
    if tensor.ndim < 2:
        return tensor.sum()
    rows = tensor.shape[0]
    columns = tensor.size // rows
    return ops.matmul(tensor.reshape(rows, columns), ops.ones((columns,), tensor.dtype)).sum()


def is_data_parallel():
    return ms.get_auto_parallel_context("parallel_mode") in (ParallelMode.DATA_PARALLEL, ParallelMode.HYBRID_PARALLEL)


def cleared_float_status(anchor):
    """``anchor``, once the NPU's float status register is cleared: the step's forward pass takes it as input, so
    the register read by ``amp.all_finite`` holds this step's overflows only, not those of whatever ran since the
    last read (the optimizer, a float16 validation pass, the stop check). As
    ``nn.TrainOneStepWithLossScaleCell.start_overflow_check`` does it."""
    status = ops.depend(ms.Tensor([0] * 8, ms.int32), anchor)
    return ops.depend(anchor, NPUClearFloatStatusV2()(status))


class ScaledLoss(nn.Cell):
    """(image, label) -> (S * loss, accuracy): the loss scaled by the loss scaler's current S (or unscaled)."""

    def __init__(self, network, loss_scaler=None):
        super().__init__(auto_prefix=False)
        self.network, self.loss_scaler = network, loss_scaler

    def construct(self, image, label):
        loss, accuracy = self.network(image, label)
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        return loss, accuracy


class TrainStep(nn.Cell):
    """(image, label) -> (loss, accuracy, finite).

    The network runs once (``value_and_grad`` with ``has_aux``), so stateful heads (the A-Softmax iteration,
    AdaFace's norm statistics) advance exactly once per step. With a ``loss_scaler``
    (``mindspore.amp.DynamicLossScaler``, for float16 training) the gradients are those of S * loss and are
    divided by S here, once: the optimizer keeps ``loss_scale=1`` and never scales again. The scaler's S and
    counter are Parameters of this cell, so checkpoints hold them. In data-parallel runs the gradients are
    averaged over ranks and so are the returned loss and accuracy; ``finite`` is then the same on every rank.
    Sharded class centres (Partial FC) keep their own gradients; the finiteness check and the clipping norm then
    take them over all ranks (``src/train/grad_reduce.py``).
    Gradients are optionally clipped by global norm. When the loss or any gradient is not finite the update is
    skipped (``finite`` is False; the dynamic scale shrinks) but the optimizer's ``global_step`` still advances,
    so the learning rate stays a function of the training step.

    Without a loss scaler the finiteness check is one ``isfinite`` of loss + sum_i sum(g_i): a NaN or Inf anywhere
    propagates into that sum (Inf - Inf is NaN). ``isfinite(g).all()`` per gradient gives the same answer at many
    times the cost on the CPU (benchmarks/bench_ops.py, case ``finite_check``).
    Float16 training, and every step on Ascend, uses ``amp.all_finite``, where a sum could overflow. On Ascend
    (a 910A, or a 910B with ``MS_ASCEND_CHECK_OVERFLOW_MODE=SATURATION_MODE``) that reads this NPU's float status
    register, which saturated float16 operators set even when every value is finite, at any amp level: a 910A
    runs float32 convolutions and MatMuls in float16 by default. The register is cleared at the start of the
    step, and its flag, local to the device, travels in the AllReduce of (loss, accuracy), so every rank skips
    the same steps and keeps the same loss scale.
    """

    def __init__(self, network, optimizer, clip_grad_norm=0.0, loss_scaler=None):
        super().__init__(auto_prefix=False)
        self.network, self.optimizer = network, optimizer
        self.weights = optimizer.parameters
        self.loss_scaler = loss_scaler
        if loss_scaler is not None:
            loss_scaler.scale_value.name, loss_scaler.counter.name = "loss_scale.value", "loss_scale.counter"
            self.loss_scale_value, self.loss_scale_counter = loss_scaler.scale_value, loss_scaler.counter
        self.grad_fn = ms.value_and_grad(ScaledLoss(network, loss_scaler), None, self.weights, has_aux=True)
        self.clip_grad_norm = clip_grad_norm
        self.status_register = reads_float_status()
        self.check_all_finite = loss_scaler is not None or ms.get_context("device_target") == "Ascend"
        self.reducer = nn.Identity()
        self.group_size = 1
        self.sharded = False
        if is_data_parallel():
            self.group_size = get_group_size()
            sharded = sharded_parameters(network)
            self.sharded = bool(sharded)
            self.reducer = GradReducer(self.weights, self.group_size, sharded)
            self.allreduce = ops.AllReduce()

    def renewed(self):
        """A new TrainStep over the same network, optimizer and loss scaler, compiled afresh on its first call.

        Needed after Parameters were replaced in place (``load_param_into_net`` / ``set_data``) once this cell
        had run: in MindSpore 2.10 GRAPH mode the compiled ``if finite:`` branch keeps using the old buffers of
        the optimizer's state (moments, learning rates), so a rollback would silently continue from stale
        values. A restore before the first call (resume) needs no renewal.
        """
        step = TrainStep(self.network, self.optimizer, self.clip_grad_norm, self.loss_scaler)
        step.set_train(self.training)
        return step

    def construct(self, image, label):
        if self.status_register:
            image = cleared_float_status(image)
        (loss, accuracy), grads = self.grad_fn(image, label)
        if self.loss_scaler is not None:
            loss = self.loss_scaler.unscale(loss)
            grads = self.loss_scaler.unscale(grads)
        grads = self.reducer(grads)
        overflow = None
        if self.check_all_finite:
            overflow = 1.0 - amp.all_finite(grads).astype(loss.dtype)
        if self.group_size > 1:
            values = (loss, accuracy) if overflow is None else (loss, accuracy, overflow)
            total = self.allreduce(ops.stack(values))
            loss, accuracy = total[0] / self.group_size, total[1] / self.group_size
            if overflow is not None:
                overflow = total[2]
        if overflow is not None:
            finite = ops.logical_and(ops.isfinite(loss), overflow == 0)
            if self.loss_scaler is not None:
                self.loss_scaler.adjust(finite)
        elif self.sharded:
            finite = ops.isfinite(loss + self.reducer.total([element_sum(grad) for grad in grads]))
        else:
            finite = ops.isfinite(ops.addn([loss] + [element_sum(grad) for grad in grads]))
        if self.clip_grad_norm > 0 and self.sharded:
            grads = clip_by_global_norm(grads, self.clip_grad_norm, self.reducer)
        elif self.clip_grad_norm > 0:
            grads = ops.clip_by_global_norm(grads, self.clip_grad_norm)
        if finite:
            loss = ops.depend(loss, self.optimizer(grads))
        else:
            step = self.optimizer.global_step
            loss = ops.depend(loss, ops.assign_add(step, ops.ones_like(step)))
        return loss, accuracy, finite
