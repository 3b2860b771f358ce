"""Every head against a NumPy implementation of its paper's formula, including cos(theta) = +-1 exactly."""

import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from src.heads import build_head
from src.heads.asoftmax import psi as asoftmax_psi

EMB, CLASSES = 8, 5


def np_cosine(x, w):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    wn = w / np.linalg.norm(w, axis=1, keepdims=True)
    return np.clip(xn @ wn.T, -1.0, 1.0)


def np_normface(cos, x, y, s=30.0):
    return s * cos


def np_cosface(cos, x, y, s=64.0, m=0.35):
    return s * (cos - m * np.eye(CLASSES)[y])


def np_arcface(cos, x, y, s=64.0, m=0.5, easy_margin=False):
    theta = np.arccos(cos)
    phi = np.cos(theta + m)
    if easy_margin:
        phi = np.where(cos > 0, phi, cos)
    else:
        phi = np.where(theta + m < math.pi, phi, cos - m * math.sin(m))
    one_hot = np.eye(CLASSES)[y]
    return s * (one_hot * phi + (1 - one_hot) * cos)


def np_lambda(it, base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0):
    return max(lambda_min, base * (1.0 + gamma * it) ** (-power))


def np_psi(theta, m):
    k = np.minimum(np.floor(m * theta / math.pi), m - 1)
    return (-1.0) ** k * np.cos(m * theta) - 2.0 * k


def np_asoftmax(cos, x, y, m=4, it=0):
    lam = np_lambda(it)
    target = (lam * cos + np_psi(np.arccos(cos), m)) / (1.0 + lam)
    one_hot = np.eye(CLASSES)[y]
    return np.linalg.norm(x, axis=1, keepdims=True) * (one_hot * target + (1 - one_hot) * cos)


def np_adaface(cos, x, y, s=64.0, m=0.4, h=0.333, t_alpha=0.01, mean0=20.0, std0=100.0):
    eps = 1e-3
    norms = np.clip(np.linalg.norm(x, axis=1, keepdims=True), 0.001, 100)
    mean = t_alpha * norms.mean() + (1 - t_alpha) * mean0
    std = t_alpha * norms.std(ddof=1) + (1 - t_alpha) * std0
    scaler = np.clip(h * (norms - mean) / (std + eps), -1, 1)
    one_hot = np.eye(CLASSES)[y]
    theta = np.arccos(np.clip(cos, -1 + eps, 1 - eps))
    theta_m = np.clip(theta + one_hot * (-m * scaler), eps, math.pi - eps)
    return s * (np.cos(theta_m) - one_hot * (m + m * scaler))


# Each reference takes cos(theta) as the head computed it (float32; checked against np_cosine separately), so the
# margin formulas are compared exactly rather than through float32 rounding of cos near +-1.
REFERENCES = {
    "normface": np_normface,
    "cosface": np_cosface,
    "arcface": np_arcface,
    "asoftmax": np_asoftmax,
    "adaface": np_adaface,
}


def inputs(head, seed=0):
    """Random embeddings, with row 0 exactly along W_0 (cos = 1) and row 1 exactly opposite W_2 (cos = -1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6, EMB)).astype(np.float32) * 3
    w = head.centres.weight.asnumpy() if hasattr(head.centres, "weight") else None
    if w is not None:
        x[0] = 2.0 * w[0]
        x[1] = -0.5 * w[2]
    y = np.array([0, 2, 1, 3, 4, 1], np.int32)
    return x, y


def run_head(head, x, y):
    head.set_train(True)
    logits, cos = head.logits(Tensor(x), Tensor(y))
    return logits.asnumpy(), cos.asnumpy()


def gradients(head, x, y):
    def loss(features, labels):
        return head.logits(features, labels)[0].sum()

    grad_fn = ms.value_and_grad(loss, grad_position=0, weights=head.trainable_params())
    _, (gx, gw) = grad_fn(Tensor(x), Tensor(y))
    return gx.asnumpy(), [g.asnumpy() for g in gw]


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_head_matches_formula(name):
    head = build_head(name, embedding_size=EMB, num_classes=CLASSES)
    x, y = inputs(head)
    logits, cos = run_head(head, x, y)
    expected = REFERENCES[name](cos.astype(np.float64), x, y)
    np.testing.assert_allclose(cos, np_cosine(x, head.centres.weight.asnumpy()), atol=1e-5)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert cos[0, 0] == pytest.approx(1.0, abs=1e-6) and cos[1, 2] == pytest.approx(-1.0, abs=1e-6)


@pytest.mark.parametrize("name", sorted(REFERENCES) + ["linear"])
def test_head_gradients_finite_at_cos_plus_minus_one(name):
    head = build_head(name, embedding_size=EMB, num_classes=CLASSES)
    x, y = inputs(head, seed=1)
    logits, _ = run_head(head, x, y)
    assert np.isfinite(logits).all()
    gx, gw = gradients(head, x, y)
    assert np.isfinite(gx).all() and all(np.isfinite(g).all() for g in gw)
    assert np.abs(gx).sum() > 0


def test_linear_head_is_affine():
    head = build_head("linear", embedding_size=EMB, num_classes=CLASSES)
    x, y = inputs(head)
    logits, scores = run_head(head, x, y)
    expected = x @ head.centres.fc.weight.asnumpy().T + head.centres.fc.bias.asnumpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(logits, scores)


def test_arcface_easy_margin_and_fallback_branch():
    head = build_head("arcface", embedding_size=EMB, num_classes=CLASSES, s=10.0, m=0.5, easy_margin=True)
    w = head.centres.weight.asnumpy()
    x = np.stack([-w[0], w[1], -0.3 * w[2] + w[3], w[3]]).astype(np.float32)
    y = np.array([0, 1, 2, 3], np.int32)
    logits, cos = run_head(head, x, y)
    np.testing.assert_allclose(logits, np_arcface(cos.astype(np.float64), x, y, s=10.0, easy_margin=True), atol=1e-4)
    head = build_head("arcface", embedding_size=EMB, num_classes=CLASSES, s=10.0, m=0.5)
    head.centres.weight.set_data(Tensor(w))
    logits, cos = run_head(head, x, y)
    assert cos[0, 0] < math.cos(math.pi - 0.5)  # theta + m > pi: the fallback is used
    assert logits[0, 0] == pytest.approx(10.0 * (cos[0, 0] - 0.5 * math.sin(0.5)), abs=1e-4)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_asoftmax_psi_continuous_and_decreasing(m):
    theta = np.linspace(0.0, math.pi, 4001)
    psi = asoftmax_psi(Tensor(np.cos(theta).astype(np.float32)), m).asnumpy()
    np.testing.assert_allclose(psi, np_psi(theta, m), atol=2e-4)
    steps = np.diff(psi)
    assert steps.max() <= 1e-5, "psi must not increase"
    assert np.abs(steps).max() < 0.02, "psi must have no jumps"
    assert psi[0] == pytest.approx(1.0, abs=1e-5) and psi[-1] == pytest.approx(1.0 - 2.0 * m, abs=1e-3)


@pytest.mark.parametrize("it", [0, 1, 100, 10000])
def test_asoftmax_lambda_closed_form(it):
    head = build_head("asoftmax", embedding_size=EMB, num_classes=CLASSES)
    head.margin.iteration.set_data(Tensor(it, ms.int32))
    assert float(head.margin.lambda_value().asnumpy()) == pytest.approx(np_lambda(it), rel=1e-5)


def test_asoftmax_rejects_bad_margin():
    with pytest.raises(ValueError, match="1..4"):
        build_head("asoftmax", embedding_size=EMB, num_classes=CLASSES, m=5)
    with pytest.raises(ValueError, match="1..4"):
        build_head("asoftmax", embedding_size=EMB, num_classes=CLASSES, m=2.5)


def test_asoftmax_uses_lambda_of_current_iteration_then_counts():
    head = build_head("asoftmax", embedding_size=EMB, num_classes=CLASSES)
    x, y = inputs(head)
    for it in range(3):
        logits, _ = run_head(head, x, y)
        expected = np_asoftmax(np_cosine(x, head.centres.weight.asnumpy()), x, y, it=it)
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert int(head.margin.iteration.asnumpy()) == 3
    head.set_train(False)
    head.logits(Tensor(x), Tensor(y))
    assert int(head.margin.iteration.asnumpy()) == 3, "evaluation must not advance the counter"


def test_stateful_heads_survive_save_and_load(tmp_path):
    asoftmax = build_head("asoftmax", embedding_size=EMB, num_classes=CLASSES)
    adaface = build_head("adaface", embedding_size=EMB, num_classes=CLASSES)
    x, y = inputs(asoftmax)
    for _ in range(4):
        run_head(asoftmax, x, y)
        run_head(adaface, x, y)
    for head, names in ((asoftmax, ["iteration"]), (adaface, ["batch_mean", "batch_std"])):
        path = str(tmp_path / f"{type(head).__name__}.ckpt")
        ms.save_checkpoint(head, path)
        fresh = build_head("asoftmax" if names == ["iteration"] else "adaface", embedding_size=EMB, num_classes=CLASSES)
        ms.load_param_into_net(fresh, ms.load_checkpoint(path), strict_load=True)
        for name in names:
            np.testing.assert_array_equal(getattr(fresh.margin, name).asnumpy(), getattr(head.margin, name).asnumpy())
    assert int(asoftmax.margin.iteration.asnumpy()) == 4
    assert float(adaface.margin.batch_mean.asnumpy()) != 20.0


def test_label_smoothing_does_not_touch_the_margin():
    """The margin sees the hard label: the logits are the same whatever the loss's smoothing, and the loss is the
    smoothed cross entropy of those logits."""
    head = build_head("cosface", embedding_size=EMB, num_classes=CLASSES)
    smoothed = build_head("cosface", embedding_size=EMB, num_classes=CLASSES, label_smoothing=0.1)
    smoothed.centres.weight.set_data(head.centres.weight.value())
    x = Tensor(np.random.default_rng(0).normal(size=(4, EMB)).astype(np.float32))
    labels = Tensor(np.array([0, 1, 2, 3], np.int32))
    logits = head.logits(x, labels)[0].asnumpy()
    np.testing.assert_array_equal(logits, smoothed.logits(x, labels)[0].asnumpy())
    log_p = logits - logits.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    hard = -log_p[np.arange(4), labels.asnumpy()]
    assert float(head(x, labels)[0]) == pytest.approx(hard.mean(), rel=1e-4)
    expected_smooth = (0.9 * hard - 0.1 * log_p.mean(1)).mean()
    assert float(smoothed(x, labels)[0]) == pytest.approx(expected_smooth, rel=1e-4)
