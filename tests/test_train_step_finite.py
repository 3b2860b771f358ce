"""TrainStep's NaN guard (one isfinite over loss + the sum of per-gradient sums, ``element_sum``): a finite step
updates the weights, a step with a NaN input is reported and leaves every weight as it was."""

import mindspore as ms
import numpy as np
import pytest

from src.heads import build_head
from src.network import build_backbone
from src.train.optimizer import build_optimizer
from src.train.train_network import FaceTrainNetwork
from src.train.train_step import TrainStep, element_sum


def make_step():
    ms.set_seed(0)
    net = FaceTrainNetwork(
        build_backbone("sphere4", embedding_size=8, width=0.125, image_size=(16, 16)),
        build_head("cosface", embedding_size=8, num_classes=5),
    )
    step = TrainStep(net, build_optimizer(net.trainable_params(), np.full(4, 0.1, np.float32), 0.9, 5e-4))
    step.set_train(True)
    return step


def weights(step):
    return {p.name: p.asnumpy().copy() for p in step.network.trainable_params()}


def test_finite_step_updates_and_nan_step_is_skipped():
    step = make_step()
    rng = np.random.RandomState(0)
    images = rng.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    labels = ms.Tensor(np.array([0, 1, 2, 3], np.int32))
    before = weights(step)
    loss, _, finite = step(ms.Tensor(images), labels)
    assert bool(finite.asnumpy()) and np.isfinite(loss.asnumpy())
    after = weights(step)
    assert any(not np.array_equal(before[name], after[name]) for name in before)

    images[1, 0, 3, 3] = np.nan
    loss, _, finite = step(ms.Tensor(images), labels)
    assert not bool(finite.asnumpy())  # the loss itself may stay finite: the clamp of cos maps NaN into [-1, 1]
    unchanged = weights(step)
    for name, value in after.items():
        np.testing.assert_array_equal(unchanged[name], value, err_msg=name)


@pytest.mark.parametrize("shape", [(7,), (5, 3), (4, 3, 3, 3)])
def test_element_sum_is_the_sum_and_carries_non_finite_values(shape):
    values = np.random.RandomState(0).uniform(-1, 1, shape).astype(np.float32)
    assert float(element_sum(ms.Tensor(values)).asnumpy()) == pytest.approx(float(values.sum()), abs=1e-5)
    for bad in (np.nan, np.inf, -np.inf):
        broken = values.copy()
        broken.flat[values.size // 2] = bad
        assert not np.isfinite(element_sum(ms.Tensor(broken)).asnumpy())
