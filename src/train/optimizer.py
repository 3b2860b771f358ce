"""SGD with momentum; weight decay only on convolution / dense / class weights."""

from mindspore import Tensor, nn


def decays(param):
    """Weight decay goes to convolution, dense and class weights (ndim > 1), not to biases, BatchNorm
    gamma/beta or PReLU slopes (all one-dimensional)."""
    return param.ndim > 1


def build_optimizer(params, lr_per_step, momentum, weight_decay):
    """``nn.SGD`` stepping through ``lr_per_step`` (its ``global_step`` picks the rate)."""
    params = list(params)
    groups = [
        {"params": [p for p in params if decays(p)], "weight_decay": weight_decay},
        {"params": [p for p in params if not decays(p)], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    return nn.SGD(groups, learning_rate=Tensor(lr_per_step), momentum=momentum)


def set_learning_rates(optimizer, lr_per_step):
    """Replace the per-step rates of an optimizer built by ``build_optimizer`` (same length); the rates are
    rebuilt from the config on resume, scaled by the run's NaN-rollback factor."""
    (param,) = [p for p in optimizer.get_parameters() if p.name == "learning_rate"]
    if tuple(param.shape) != tuple(lr_per_step.shape):
        raise ValueError(f"expected {param.shape[0]} learning rates, got {len(lr_per_step)}")
    param.set_data(Tensor(lr_per_step))
