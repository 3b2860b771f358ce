"""SphereFace2 and SphereFace-R against NumPy versions of their formulas, their gradients against finite
differences (of the surrogate their gradient detachment defines), and the loss objectives of every margin."""
import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from src.heads import build_head
from src.heads.sphereface2 import initial_bias

EMB, CLASSES = 6, 5
Y = np.array([0, 2, 1, 3], np.int32)


def np_cos(x, w):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    wn = w / np.linalg.norm(w, axis=1, keepdims=True)
    return np.clip(xn @ wn.T, -1.0, 1.0)


def softplus(z):
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def np_sphereface2_target(cos, y, m=0.4, t=3.0, magn_type="C"):
    one_hot = np.eye(CLASSES)[y]
    def g(c):
        return 2.0 * ((c + 1.0) / 2.0) ** t - 1.0

    if magn_type == "C":
        return g(cos) - m * (2 * one_hot - 1)
    theta = np.arccos(np.clip(cos, -1 + 1e-5, 1 - 1e-5))
    theta_y = theta + m if magn_type == "A" else theta * m
    return g(np.cos(np.clip(np.where(one_hot > 0, theta_y, theta), 1e-5, 3.14159)))


def np_sphereface2_loss(logits, y, r=40.0, alpha=0.7, lw=50.0):
    one_hot = np.eye(CLASSES)[y]
    weight = alpha * one_hot + (1 - alpha) * (1 - one_hot)
    return lw / r * (weight * softplus(-(2 * one_hot - 1) * logits)).sum(1).mean()


def np_spherefacer_phi(cos, y, m=1.5, magn_type="v0"):
    one_hot = np.eye(CLASSES)[y]
    theta = np.arccos(np.clip(cos, -1 + 1e-5, 1 - 1e-5))
    m_theta = theta * (1 + (m - 1) * one_hot)
    if magn_type == "v0":
        k = np.floor(m_theta / math.pi)
        return (-1.0) ** k * np.cos(m_theta) - 2 * k
    if magn_type == "v1":
        return np.cos(np.clip(m_theta, 1e-5, 3.14159))
    return np.cos(m_theta / m)


def np_softmax_loss(logits, y):
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean()


def data(head, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(len(Y), EMB)) * 2, head.centres.weight.asnumpy().astype(np.float64)


def ms_loss_and_grad(head, x):
    head.set_train(False)

    def loss_of(features):
        return head(features, Tensor(Y))[0]
    loss, grad = ms.value_and_grad(loss_of)(Tensor(x.astype(np.float32)))
    return float(loss), grad.asnumpy()


def finite_difference(loss, x, h=1e-5):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (loss(x + step) - loss(x - step)) / (2 * h)
    return grad


@pytest.mark.parametrize("magn_type", ["C", "A", "M"])
def test_sphereface2_loss_and_detached_gradient(magn_type):
    m = 0.4 if magn_type != "M" else 1.5
    head = build_head("sphereface2", embedding_size=EMB, num_classes=CLASSES, magn_type=magn_type, m=m)
    x, w = data(head)
    b = float(head.margin.bias.asnumpy())
    cos0 = np_cos(x, w)
    offset0 = np_sphereface2_target(cos0, Y, m=m, magn_type=magn_type) - cos0  # detached at x
    loss, grad = ms_loss_and_grad(head, x)
    assert loss == pytest.approx(np_sphereface2_loss(40.0 * (cos0 + offset0) + b, Y), rel=1e-4)
    def surrogate(f):
        return np_sphereface2_loss(40.0 * (np_cos(f, w) + offset0) + b, Y)

    np.testing.assert_allclose(grad, finite_difference(surrogate, x), rtol=1e-3, atol=1e-4)


def test_sphereface2_bias_gradient_and_initial_balance():
    head = build_head("sphereface2", embedding_size=EMB, num_classes=CLASSES)
    x, _ = data(head)
    head.set_train(False)

    def loss_of(features):
        return head(features, Tensor(Y))[0]
    grad_fn = ms.grad(loss_of, grad_position=None, weights=[head.margin.bias])
    (grad_b,) = grad_fn(Tensor(x.astype(np.float32)))
    b = float(head.margin.bias.asnumpy())
    cos = np_cos(x, head.centres.weight.asnumpy().astype(np.float64))
    offset = np_sphereface2_target(cos, Y) - cos
    fd = finite_difference(lambda v: np_sphereface2_loss(40.0 * (cos + offset) + v[0], Y), np.array([b]))
    assert float(grad_b) == pytest.approx(fd[0], rel=1e-3)
    # the initial bias balances the positive and negative gradients when every cos(theta) is 0 (the paper's init)
    classes, alpha, r, m, t = 1000, 0.7, 40.0, 0.4, 3.0
    b0 = initial_bias(classes, r, m, t, alpha, "C")
    a_y, a_i = r * (2 * 0.5 ** t - 1 - m), r * (2 * 0.5 ** t - 1 + m)
    def sigmoid(z):
        return 1 / (1 + math.exp(-z))

    positive = alpha * sigmoid(-(a_y + b0))
    negative = (1 - alpha) * (classes - 1) * sigmoid(a_i + b0)
    assert positive == pytest.approx(negative, rel=1e-6)


@pytest.mark.parametrize("magn_type", ["v0", "v1", "v2"])
def test_spherefacer_loss_and_detached_gradient(magn_type):
    head = build_head("spherefacer", embedding_size=EMB, num_classes=CLASSES, magn_type=magn_type)
    x, w = data(head, seed=1)
    cos0 = np_cos(x, w)
    offset0 = np_spherefacer_phi(cos0, Y, magn_type=magn_type) - cos0
    loss, grad = ms_loss_and_grad(head, x)
    assert loss == pytest.approx(50.0 / 30.0 * np_softmax_loss(30.0 * (cos0 + offset0), Y), rel=1e-4)
    def surrogate(f):
        return 50.0 / 30.0 * np_softmax_loss(30.0 * (np_cos(f, w) + offset0), Y)

    np.testing.assert_allclose(grad, finite_difference(surrogate, x), rtol=1e-3, atol=1e-4)


def test_spherefacer_v0_is_sphereface_psi_on_the_target():
    theta = np.linspace(0.01, math.pi - 0.01, 50)
    cos = np.cos(theta)[:, None] * np.ones((1, CLASSES))
    y = np.zeros(len(theta), np.int32)
    one_hot = np.eye(CLASSES)[y]
    phi = np_spherefacer_phi(cos, y, m=2.0)
    head = build_head("spherefacer", embedding_size=EMB, num_classes=CLASSES, m=2.0, s=1.0)
    logits = head.margin(Tensor(cos.astype(np.float32)), Tensor(one_hot.astype(np.float32)), None).asnumpy()
    np.testing.assert_allclose(logits, phi, atol=2e-4)
    np.testing.assert_allclose(logits[:, 1:], cos[:, 1:], atol=1e-5)  # no margin on the other classes
    assert np.all(np.diff(logits[:, 0]) < 0), "psi decreases in theta"


@pytest.mark.parametrize("name", ["cosface", "arcface", "normface"])
def test_softmax_margins_gradient_matches_finite_differences(name):
    from test_heads import REFERENCES
    head = build_head(name, embedding_size=EMB, num_classes=CLASSES)
    x, w = data(head, seed=2)
    reference = REFERENCES[name]

    def loss(f):
        return np_softmax_loss(reference(np_cos(f, w), f, Y), Y)
    value, grad = ms_loss_and_grad(head, x)
    assert value == pytest.approx(loss(x), rel=1e-4)
    np.testing.assert_allclose(grad, finite_difference(loss, x), rtol=1e-3, atol=1e-4)
