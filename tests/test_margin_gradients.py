"""Finite-difference checks of every margin's gradient (float64): MindSpore's autodiff of the margin formula
against central differences of the same formula, at points on both sides of each branch: ArcFace's fallback
below cos(pi - m) and its easy margin, A-Softmax's psi on each side of every k boundary theta = k pi / m,
AdaFace with the norm scaler clipped and not, CosFace and NormFace."""
import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from src.heads.adaface import adaface_logits
from src.heads.arcface import arcface_logits
from src.heads.asoftmax import asoftmax_logits
from src.heads.cosface import cosface_logits

STEP = 1e-6


@pytest.fixture(autouse=True)
def pynative():
    """Eager mode: the formulas are differentiated as plain Python functions (closures over the test's settings)."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=ms.GRAPH_MODE)
ONE_HOT = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def numeric_gradient(function, inputs, index, weights):
    """d sum(weights * function(*inputs)) / d inputs[index] by central differences."""
    base = [np.array(x, np.float64) for x in inputs]
    grad = np.zeros_like(base[index])
    for position in np.ndindex(base[index].shape):
        values = []
        for delta in (STEP, -STEP):
            moved = [x.copy() for x in base]
            moved[index][position] += delta
            values.append(float((function(*[Tensor(x) for x in moved]).asnumpy() * weights).sum()))
        grad[position] = (values[0] - values[1]) / (2 * STEP)
    return grad


def check(function, inputs, positions=(0,)):
    """Autodiff of sum(w * function(inputs)) w.r.t. ``inputs[positions]`` equals the central differences."""
    shape = function(*[Tensor(np.asarray(x, np.float64)) for x in inputs]).shape
    weights = np.random.RandomState(0).uniform(0.5, 1.5, shape)
    weight_tensor = Tensor(weights)

    def objective(*args):
        return (function(*args) * weight_tensor).sum()

    grads = ms.grad(objective, grad_position=tuple(positions))(*[Tensor(np.asarray(x, np.float64)) for x in inputs])
    grads = grads if isinstance(grads, tuple) else (grads,)
    for position, grad in zip(positions, grads):
        expected = numeric_gradient(function, inputs, position, weights)
        np.testing.assert_allclose(grad.asnumpy(), expected, rtol=1e-5, atol=1e-6)
    return weights


def cos_rows(*targets):
    """4 x 3 cosines whose target entries (the ONE_HOT ones, in row order) are ``targets``; the others spread."""
    cos = np.array([[0.0, 0.3, -0.4], [0.6, 0.0, -0.1], [-0.7, 0.2, 0.0], [0.0, -0.5, 0.45]])
    cos[ONE_HOT.astype(bool)] = targets
    return cos


def test_cosface_gradient():
    check(lambda cos: cosface_logits(cos, Tensor(ONE_HOT), 30.0, 0.35), [cos_rows(0.5, -0.2, 0.9, -0.85)])


@pytest.mark.parametrize("easy_margin", [False, True])
def test_arcface_gradient_on_both_sides_of_each_branch(easy_margin):
    m = 0.5
    fallback = math.cos(math.pi - m)  # -0.8776: below it the target logit is cos - m sin(m)
    cos = cos_rows(fallback - 0.05, fallback + 0.05, 0.3, -0.3)  # both sides of the fallback and of easy's 0
    check(lambda c: arcface_logits(c, Tensor(ONE_HOT), 64.0, m, easy_margin), [cos])


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_asoftmax_psi_gradient_on_each_side_of_every_k_boundary(m):
    boundaries = [math.cos(k * math.pi / m) for k in range(1, m)] or [0.0]
    for boundary in boundaries:
        cos = cos_rows(boundary - 0.02, boundary + 0.02, min(boundary + 0.3, 0.99), max(boundary - 0.3, -0.99))
        norms = np.array([[3.0], [5.0], [0.7], [12.0]])
        check(lambda c, n: asoftmax_logits(c, Tensor(ONE_HOT), n, 2.5, m), [cos, norms], positions=(0, 1))


def test_adaface_gradient_with_the_norm_scaler_clipped_and_not():
    """Norms far above / below the batch mean clip the scaler at +-1; near the mean it is linear."""
    cos = cos_rows(0.6, -0.3, 0.1, 0.95)
    norms = np.array([[40.0], [21.0], [19.5], [1.0]])  # mean 20, std 5, h 0.333: clipped, linear, linear, clipped

    def logits(c, n):
        return adaface_logits(c, Tensor(ONE_HOT), n, 20.0, 5.0, 64.0, 0.4, 0.333)

    check(logits, [cos, norms], positions=(0, 1))
    scaler = np.clip(0.333 * (norms - 20.0) / (5.0 + 1e-3), -1, 1).ravel()
    assert scaler[0] == 1.0 and scaler[3] == -1.0 and abs(scaler[1]) < 1 and abs(scaler[2]) < 1


def test_normface_gradient():
    """NormFace is the scaled cosine (CosFace with m = 0)."""
    check(lambda cos: cosface_logits(cos, Tensor(ONE_HOT), 16.0, 0.0), [cos_rows(0.2, 0.4, -0.6, 0.8)])
