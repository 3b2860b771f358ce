"""TrainStep: loss scaling applied once, non-finite updates skipped, gradient clipping, the per-step learning
rate, label smoothing, and the mixed-precision settings."""

import argparse

import mindspore as ms
import numpy as np
import pytest

from src.heads import build_head
from src.model_utils.config import ConfigError
from src.network import build_backbone
from src.train.amp import build_loss_scaler, cast_o2, check_amp
from src.train.optimizer import build_optimizer, set_learning_rates
from src.train.train_network import FaceTrainNetwork
from src.train.train_step import TrainStep

BATCH = ms.Tensor(np.random.RandomState(0).randn(8, 3, 32, 32).astype(np.float32))
LABELS = ms.Tensor(np.arange(8) % 5, ms.int32)


def tiny_network(head="asoftmax", label_smoothing=0.0):
    ms.set_seed(1)
    backbone = build_backbone("sphere4", width=0.125, image_size=(32, 32), embedding_size=16)
    return FaceTrainNetwork(
        backbone, build_head(head, embedding_size=16, num_classes=5, label_smoothing=label_smoothing)
    )


def train_step(rates, loss_scaler=None, clip=0.0, momentum=0.9, weight_decay=5e-4, head="asoftmax"):
    network = tiny_network(head)
    optimizer = build_optimizer(network.trainable_params(), np.asarray(rates, np.float32), momentum, weight_decay)
    step = TrainStep(network, optimizer, clip, loss_scaler)
    step.set_train(True)
    return step


def weights(step):
    return {p.name: p.asnumpy().copy() for p in step.weights}


def global_norm(tensors):
    return np.sqrt(sum(float(np.sum(t.asnumpy().astype(np.float64) ** 2)) for t in tensors))


def test_loss_scaling_happens_once_and_non_finite_steps_are_skipped():
    """Training with a dynamic loss scale S gives the same float32 weights as without (S a power of two is
    exact): the gradients are divided by S exactly once and the optimizer's own loss_scale stays 1. A step with
    a NaN skips the update (weights and moments unchanged) but still advances global_step, and halves S."""
    plain = train_step([0.1] * 5)
    scaled = train_step([0.1] * 5, ms.amp.DynamicLossScaler(1024.0, 2, 2))
    assert scaled.optimizer.loss_scale == 1.0
    for _ in range(3):
        loss_plain, _, _ = plain(BATCH, LABELS)
        loss_scaled, _, finite = scaled(BATCH, LABELS)
        assert bool(finite) and float(loss_scaled) == float(loss_plain)
    a, b = weights(plain), weights(scaled)
    assert all(np.array_equal(a[name], b[name]) for name in a)
    # three finite steps with window 2: the scale doubled once; counter 3 mod 2
    assert float(scaled.loss_scale_value.asnumpy()) == 2048.0
    assert int(scaled.loss_scale_counter.asnumpy()) == 1

    moments = {p.name: p.asnumpy().copy() for p in scaled.optimizer.moments}
    bad = BATCH.asnumpy().copy()
    bad[0, 0, 0, 0] = np.nan
    loss, _, finite = scaled(ms.Tensor(bad), LABELS)
    assert not bool(finite) and not np.isfinite(float(loss))
    after = weights(scaled)
    assert all(np.array_equal(b[name], after[name]) for name in b)
    assert all(np.array_equal(moments[p.name], p.asnumpy()) for p in scaled.optimizer.moments)
    assert int(scaled.optimizer.global_step.asnumpy()[0]) == 4  # the lr stays indexed by the training step
    assert float(scaled.loss_scale_value.asnumpy()) == 1024.0 and int(scaled.loss_scale_counter.asnumpy()) == 0
    assert bool(scaled(BATCH, LABELS)[2])


def test_per_step_learning_rate_and_clipping_by_global_norm():
    """Momentum 0, no weight decay, gradients clipped to global norm c (smaller than theirs): step k changes the
    weights by lr_k * c * g_k / |g_k|. The optimizer reads lr_k at its global_step from the array that
    set_learning_rates put in (as resume and the NaN rollback do)."""
    rates, clip = np.array([0.1, 0.02, 0.3], np.float32), 0.05
    step = train_step(rates, clip=clip, momentum=0.0, weight_decay=0.0, head="cosface")
    set_learning_rates(step.optimizer, rates * 0.5)
    grad_fn = ms.value_and_grad(step.network, None, step.weights, has_aux=True)
    names = [p.name for p in step.weights]
    for k in range(3):
        _, grads = grad_fn(BATCH, LABELS)
        norm = global_norm(grads)
        assert norm > 10 * clip
        before = weights(step)
        step(BATCH, LABELS)
        after = weights(step)
        for name, grad in zip(names, grads):
            np.testing.assert_allclose(
                before[name] - after[name], 0.5 * rates[k] * clip / norm * grad.asnumpy(), rtol=2e-3, atol=5e-8
            )
    with pytest.raises(ValueError, match="expected 3 learning rates"):
        set_learning_rates(step.optimizer, np.ones(4, np.float32))


def test_label_smoothing_matches_the_formula():
    """loss = (1 - eps) CE(z, y) + eps mean_j(-log softmax(z)_j) on the head's logits z."""
    eps = 0.1
    network = tiny_network("cosface", label_smoothing=eps)
    network.set_train(False)
    logits, _ = network.head.logits(network.backbone(BATCH), LABELS)
    z = logits.asnumpy().astype(np.float64)
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    y = LABELS.asnumpy()
    expected = np.mean((1 - eps) * -log_p[np.arange(8), y] + eps * -log_p.mean(axis=1))
    loss, _ = network(BATCH, LABELS)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def amp_config(device, level):
    return argparse.Namespace(
        device_target=device, amp_level=level, loss_scale=65536.0, loss_scale_factor=2, loss_scale_window=2000
    )


def test_amp_on_cpu_is_refused_with_the_key_named():
    with pytest.raises(ConfigError, match="amp_level.*O2.*GPU or Ascend.*float32"):
        check_amp(amp_config("CPU", "O2"))
    check_amp(amp_config("GPU", "O2"))
    check_amp(amp_config("CPU", "O0"))
    assert build_loss_scaler(amp_config("CPU", "O0")) is None
    scaler = build_loss_scaler(amp_config("GPU", "O2"))
    assert float(scaler.scale_value.asnumpy()) == 65536.0 and scaler.scale_factor == 2


def test_o2_keeps_parameter_names_and_a_float32_head():
    """cast_o2 makes the backbone compute in float16 with BatchNorm in float32, keeps every parameter name and
    float32 master weights (checkpoints load into float32 networks), and the head and loss stay float32.
    (Built on CPU only to inspect it; CPU training refuses AMP.)"""
    ms.set_seed(1)
    backbone = build_backbone("mobilefacenet", image_size=(32, 32), embedding_size=16)
    network = FaceTrainNetwork(backbone, build_head("cosface", embedding_size=16, num_classes=5))
    names = [p.name for p in network.get_parameters()]
    cast_o2(backbone)
    assert [p.name for p in network.get_parameters()] == names
    assert {p.dtype for p in network.get_parameters()} == {ms.float32}
    network.set_train(False)
    assert backbone(BATCH).dtype == ms.float16
    loss, accuracy = network(BATCH, LABELS)
    assert loss.dtype == ms.float32 and np.isfinite(float(loss))
