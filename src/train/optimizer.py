"""SGD with momentum; weight decay only on convolution / dense / class weights."""

import mindspore as ms
from mindspore import Parameter, Tensor, jit, nn, ops

_apply_momentum = ops.MultitypeFuncGraph("apply_momentum")


@_apply_momentum.register("Function", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
def _apply_momentum_tensor(apply, momentum, learning_rate, gradient, weight, moment):
    return ops.depend(True, apply(weight, moment, learning_rate, gradient, momentum))


class MomentumSGD(nn.Optimizer):
    r"""SGD with momentum as ``torch.optim.SGD`` (dampening 0, no Nesterov) and the SphereFace papers train:

        v <- mu v + (g + lambda w),    w <- w - eta v

    with momentum mu, the weight decay lambda of the parameter's group and the rate eta of the step. One
    ``ApplyMomentum`` per parameter and one buffer per parameter, ``moments.<name>`` in checkpoints. ``nn.SGD``
    applies the same rule with two buffers of every parameter's shape (``accum.<name>``, ``stat.<name>``) and is
    slower on the CPU (``benchmarks/bench_ops.py --cases optimizer``; docs/performance.md); ``nn.Momentum`` is
    deprecated in MindSpore 2.10. Checkpoints written with ``nn.SGD`` resume (``src/train/checkpoint.py``,
    ``legacy_optimizer``).
    """

    def __init__(self, params, learning_rate, momentum):
        super().__init__(learning_rate, params)
        self.momentum = Parameter(Tensor(momentum, ms.float32), name="momentum")
        self.moments = self._parameters.clone(prefix="moments", init="zeros")
        self.apply = ops.ApplyMomentum()

    @jit
    def construct(self, gradients):
        gradients = self.scale_grad(self.decay_weight(gradients))
        learning_rate = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        return self.hyper_map_reverse(
            ops.partial(_apply_momentum, self.apply, self.momentum, learning_rate),
            gradients,
            self._parameters,
            self.moments,
        )


def legacy_optimizer(entries):
    """Checkpoint ``entries`` written with ``nn.SGD`` in ``MomentumSGD``'s names: its ``accum.<name>`` is the
    ``moments.<name>`` buffer; its ``stat.<name>`` (1 until the parameter's first update, then 0) is dropped, since
    ``moments`` starting at zero gives the same first update."""
    renamed = {}
    for name, value in entries.items():
        if name.startswith("stat."):
            continue
        renamed["moments." + name[len("accum.") :] if name.startswith("accum.") else name] = value
    return renamed


def decays(param):
    """Weight decay goes to convolution, dense and class weights (ndim > 1), not to biases, BatchNorm
    gamma/beta or PReLU slopes (all one-dimensional)."""
    return param.ndim > 1


def param_groups(params, weight_decay):
    """The optimizer's parameter groups: ``weight_decay`` for the parameters that ``decays``, none for the rest."""
    params = list(params)
    groups = [
        {"params": [p for p in params if decays(p)], "weight_decay": weight_decay},
        {"params": [p for p in params if not decays(p)], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(params, lr_per_step, momentum, weight_decay):
    """``MomentumSGD`` stepping through ``lr_per_step`` (its ``global_step`` picks the rate)."""
    return MomentumSGD(param_groups(params, weight_decay), Tensor(lr_per_step), momentum)


def set_learning_rates(optimizer, lr_per_step):
    """Replace the per-step rates of an optimizer built by ``build_optimizer`` (same length); the rates are
    rebuilt from the config on resume, scaled by the run's NaN-rollback factor."""
    (param,) = [p for p in optimizer.get_parameters() if p.name == "learning_rate"]
    if tuple(param.shape) != tuple(lr_per_step.shape):
        raise ValueError(f"expected {param.shape[0]} learning rates, got {len(lr_per_step)}")
    param.set_data(Tensor(lr_per_step))
