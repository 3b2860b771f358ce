"""BatchNorm folding for inference (src/network/fold_bn.py): the folded network computes the same function, every
BatchNorm after a convolution or dense layer is folded, the pre-activation ones stay, and eval/export use it."""

import numpy as np
import pytest
from mindspore import Parameter, Tensor, load_param_into_net, nn

from src.network import build_backbone
from src.network.fold_bn import fold_batch_norms, folded_weights

SIZE = (32, 32)


def randomised(name, seed=0):
    """A backbone whose BatchNorms have non-trivial statistics and affine parameters (fresh ones are identities)."""
    net = build_backbone(name, embedding_size=16, image_size=SIZE)
    rng = np.random.RandomState(seed)
    for param in net.get_parameters():
        if param.name.endswith(("moving_mean", "beta")):
            param.set_data(Tensor(rng.normal(0, 0.2, param.shape).astype(np.float32)))
        elif param.name.endswith(("moving_variance", "gamma")):
            param.set_data(Tensor(rng.uniform(0.5, 1.5, param.shape).astype(np.float32)))
    return net


def batch_norms(net):
    return [name for name, cell in net.cells_and_names() if isinstance(cell, (nn.BatchNorm1d, nn.BatchNorm2d))]


@pytest.mark.parametrize("name", ["mobilefacenet", "iresnet18"])
def test_folded_network_computes_the_same_function(name):
    images = Tensor(np.random.RandomState(1).uniform(-1, 1, (4, 3) + SIZE).astype(np.float32))
    reference = randomised(name)
    reference.set_train(False)
    expected = reference(images).asnumpy()
    folded = build_backbone(name, embedding_size=16, image_size=SIZE)  # folded before its first call (graph mode
    load_param_into_net(
        folded,
        {
            p.name: Parameter(p.data.copy(), name=p.name)  # compiles a network once)
            for p in reference.get_parameters()
        },
    )
    before = batch_norms(folded)
    count = fold_batch_norms(folded)
    folded.set_train(False)
    actual = folded(images).asnumpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    remaining = batch_norms(folded)
    assert count == len(before) - len(remaining) > 0
    if name == "mobilefacenet":
        assert remaining == []
    else:  # iResNet: each block's pre-activation bn1 and the bn2 after the last stage precede no foldable layer
        assert all(n.endswith(".bn1") for n in remaining if n != "bn2") and "bn2" in remaining
    assert fold_batch_norms(folded) == 0  # nothing left to fold
    names = [param.name for param in folded.get_parameters()]
    assert len(names) == len(set(names)) and set(names) <= {param.name for param in reference.get_parameters()} | {
        name.rsplit(".", 1)[0] + ".bias" for name in names
    }


def test_folded_weights_formula():
    """W' = W a, b' = beta + a (b - mu), a = gamma / sqrt(var + eps), per output channel."""
    dense = nn.Dense(
        3,
        2,
        weight_init=Tensor(np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], np.float32)),
        bias_init=Tensor(np.array([0.5, -0.5], np.float32)),
    )
    bn = nn.BatchNorm1d(
        2,
        eps=1e-5,
        gamma_init=Tensor(np.array([2.0, 0.5], np.float32)),
        beta_init=Tensor(np.array([0.1, 0.2], np.float32)),
        moving_mean_init=Tensor(np.array([1.0, -1.0], np.float32)),
        moving_var_init=Tensor(np.array([4.0, 0.25], np.float32)),
    )
    weight, bias = folded_weights(dense, bn)
    scale = np.array([2.0, 0.5]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5)
    np.testing.assert_allclose(weight, np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]) * scale[:, None], rtol=1e-6)
    np.testing.assert_allclose(
        bias, np.array([0.1, 0.2]) + scale * (np.array([0.5, -0.5]) - np.array([1.0, -1.0])), rtol=1e-6
    )


def test_sphere_networks_fold_only_their_embedding_batch_norm():
    assert fold_batch_norms(build_backbone("sphere4", embedding_size=8, image_size=SIZE, width=0.125)) == 0
    net = build_backbone("sphere4", embedding_size=8, image_size=SIZE, width=0.125, embedding_bn=True)
    images = Tensor(np.random.RandomState(2).uniform(-1, 1, (3, 3) + SIZE).astype(np.float32))
    net.embedding_bn.moving_mean.set_data(Tensor(np.linspace(-1, 1, 8).astype(np.float32)))
    net.embedding_bn.moving_variance.set_data(Tensor(np.linspace(0.5, 2, 8).astype(np.float32)))
    net.set_train(False)
    expected = net(images).asnumpy()
    twin = build_backbone("sphere4", embedding_size=8, image_size=SIZE, width=0.125, embedding_bn=True)
    load_param_into_net(twin, {p.name: Parameter(p.data.copy(), name=p.name) for p in net.get_parameters()})
    assert fold_batch_norms(twin) == 1
    twin.set_train(False)
    np.testing.assert_allclose(twin(images).asnumpy(), expected, rtol=1e-4, atol=1e-5)
