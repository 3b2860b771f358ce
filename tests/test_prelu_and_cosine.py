"""The speed-motivated operator choices compute what they replace: PReLU as relu(x) - w relu(-x) (forward, both
gradients, checkpoint names) and the cosine head's single transpose_b MatMul."""
import numpy as np
import mindspore as ms
from mindspore import nn

from src.heads import build_head
from src.network import build_backbone
from src.network.prelu import PReLU


class SumOf(nn.Cell):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def construct(self, x):
        return self.cell(x).sum()


def test_prelu_matches_formula_and_nn_prelu_with_gradients():
    rng = np.random.RandomState(0)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    slopes = np.array([0.25, -0.5, 1.5], np.float32)
    ours, reference = PReLU(3), nn.PReLU(3, w=0.25)
    ours.w.set_data(ms.Tensor(slopes))
    reference.w.set_data(ms.Tensor(slopes))
    w = slopes.reshape(1, 3, 1, 1)
    expected = np.maximum(x, 0) + w * np.minimum(x, 0)
    np.testing.assert_allclose(ours(ms.Tensor(x)).asnumpy(), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(reference(ms.Tensor(x)).asnumpy(), expected, rtol=1e-6, atol=1e-7)
    for cell in (ours, reference):
        net = SumOf(cell)
        _, (grad_x, (grad_w,)) = ms.value_and_grad(net, 0, net.trainable_params())(ms.Tensor(x))
        np.testing.assert_allclose(grad_x.asnumpy(), np.where(x > 0, 1.0, np.broadcast_to(w, x.shape)), atol=1e-6)
        np.testing.assert_allclose(grad_w.asnumpy(), np.minimum(x, 0).sum(axis=(0, 2, 3)), rtol=1e-5)


def test_prelu_keeps_nn_prelu_parameter_names():
    names = {p.name: tuple(p.shape) for p in build_backbone("sphere4", width=0.125, image_size=(32, 32))
             .get_parameters()}
    assert names["features.1.w"] == (8,)
    assert PReLU(7).w.asnumpy().tolist() == [0.25] * 7


def test_cosine_head_equals_normalised_product():
    rng = np.random.RandomState(1)
    head = build_head("normface", embedding_size=6, num_classes=5)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    weight = head.weight.asnumpy()
    expected = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ \
        (weight / np.linalg.norm(weight, axis=1, keepdims=True)).T
    np.testing.assert_allclose(head.cosine(ms.Tensor(x)).asnumpy(), expected, rtol=1e-5, atol=1e-6)
