"""The cosine head's single transpose_b MatMul computes x_n . W_n^T."""

import mindspore as ms
import numpy as np

from src.heads import build_head


def test_cosine_head_equals_normalised_product():
    rng = np.random.RandomState(1)
    head = build_head("normface", embedding_size=6, num_classes=5)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    weight = head.centres.weight.asnumpy()
    expected = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        weight / np.linalg.norm(weight, axis=1, keepdims=True)
    ).T
    np.testing.assert_allclose(head.centres(ms.Tensor(x)).asnumpy(), expected, rtol=1e-5, atol=1e-6)
