"""What the CPU kernel tests share: a layer's output and gradients, one training step of a backbone with and without
the kernels, BatchNorms with non-trivial statistics, and a skip when the kernels cannot be built here."""

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, nn

from src.heads import build_head
from src.kernels.accelerate import apply_cpu_kernels
from src.kernels.build import KernelBuildError
from src.kernels.library import build_all
from src.network import build_backbone
from src.train.optimizer import build_optimizer
from src.train.train_network import FaceTrainNetwork
from src.train.train_step import TrainStep


def require_kernels():
    """Skip the calling test, saying why, when the kernels cannot be built here (no compiler, no headers)."""
    try:
        build_all()
    except KernelBuildError as error:
        pytest.skip(f"the CPU kernels cannot be built here: {error}")


class SquareSum(nn.Cell):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def construct(self, x):
        y = self.cell(x)
        return (y * y).sum()


def value_and_grads(cell, x):
    """(output, d/dx, d/d(each trainable parameter of the cell)...) of sum(cell(x)^2), as arrays."""
    grad = ms.value_and_grad(SquareSum(cell), 0, cell.trainable_params())
    _, (dx, dparams) = grad(x)
    return (cell(x).asnumpy(), dx.asnumpy(), *(d.asnumpy() for d in dparams))


def train_step(name, image_size, initial=None, kernels=False, **backbone):
    """One SGD-momentum step of backbone ``name`` (16-d, keyword arguments ``backbone``; through the CPU kernels
    with ``kernels``) + a cosface head from ``initial`` (parameter arrays; None: the seed-1 initialisation) on 4
    images: (loss, parameters before, parameters after)."""
    ms.set_seed(1)
    net = build_backbone(name, embedding_size=16, image_size=image_size, **backbone)
    if kernels:
        apply_cpu_kernels(net)
    network = FaceTrainNetwork(net, build_head("cosface", embedding_size=16, num_classes=5))
    if initial is not None:
        ms.load_param_into_net(network, {k: Parameter(ms.Tensor(v), name=k) for k, v in initial.items()})
    before = {p.name: p.asnumpy().copy() for p in network.trainable_params()}
    step = TrainStep(network, build_optimizer(network.trainable_params(), np.full(1, 0.01, np.float32), 0.9, 5e-4))
    step.set_train(True)
    rng = np.random.RandomState(6)
    images = ms.Tensor(rng.uniform(-1, 1, (4, 3) + tuple(image_size)).astype(np.float32))
    loss = float(step(images, ms.Tensor(np.arange(4) % 5, ms.int32))[0].asnumpy())
    return loss, before, {p.name: p.asnumpy().copy() for p in network.trainable_params()}


def assert_same_training_step(name, image_size, **backbone):
    """One training step in MindSpore's layers and one through the kernels from the same parameters: the same loss
    and the same weight update up to float rounding. Parameters whose update is below 1e-3 of the largest are left
    out: e.g. the betas of BatchNorms that feed another BatchNorm through a 1x1 convolution have a gradient of
    exactly 0 in exact arithmetic (the next BatchNorm removes a per-channel shift), so theirs is rounding noise."""
    native_loss, before, native_after = train_step(name, image_size, **backbone)
    custom_loss, custom_before, custom_after = train_step(name, image_size, before, kernels=True, **backbone)
    assert custom_before.keys() == before.keys()
    assert all(np.array_equal(custom_before[k], before[k]) for k in before)
    assert custom_loss == pytest.approx(native_loss, rel=1e-5)
    updates = {name: native_after[name] - value for name, value in before.items()}
    largest = max(np.abs(update).max() for update in updates.values())
    compared = 0
    for name, update in updates.items():
        scale = np.abs(update).max()
        if scale >= 1e-3 * largest:
            np.testing.assert_allclose(
                custom_after[name] - before[name], update, rtol=0, atol=1e-3 * scale, err_msg=name
            )
            compared += 1
    assert compared > len(updates) // 2


def randomise_batch_norms(net, seed=0):
    """Give ``net``'s BatchNorms non-trivial statistics and affine parameters (moving means and betas ~ N(0, 0.2),
    moving variances and gammas ~ U(0.5, 1.5)); returns ``net``."""
    rng = np.random.RandomState(seed)
    for param in net.get_parameters():
        if param.name.endswith(("moving_mean", "beta")):
            param.set_data(ms.Tensor(rng.normal(0, 0.2, param.shape).astype(np.float32)))
        elif param.name.endswith(("moving_variance", "gamma")):
            param.set_data(ms.Tensor(rng.uniform(0.5, 1.5, param.shape).astype(np.float32)))
    return net
