"""Backbone shapes and sizes: sphere20a as in the SphereFace paper."""

import mindspore as ms
import numpy as np
import pytest

from src.model_utils.config import ConfigError, load_config
from src.network import BACKBONES, build_backbone, build_backbone_from_config
from src.network.layers import feature_map_size

SPHERE20A_PARAMS_112X96 = 22_666_944


def count(net):
    return sum(p.size for p in net.trainable_params())


def test_sphere20a_parameter_count_and_output():
    net = build_backbone("sphere20a")
    assert count(net) == SPHERE20A_PARAMS_112X96
    assert net.fc5.weight.shape == (512, 512 * 7 * 6)
    out = net(ms.Tensor(np.zeros((2, 3, 112, 96), np.float32)))
    assert out.shape == (2, 512)


def test_sphere20a_112x112_and_other_embedding_sizes():
    net = build_backbone("sphere20a", embedding_size=256, image_size=(112, 112))
    assert net.fc5.weight.shape == (256, 512 * 7 * 7)
    assert net(ms.Tensor(np.zeros((1, 3, 112, 112), np.float32))).shape == (1, 256)


def test_sphere20a_layout():
    """Stages of 64/128/256/512 channels with 1/2/4/1 residual units: 4 + 2 * 8 convolutions = 20 layers with fc5."""
    net = build_backbone("sphere20a")
    convs = [c for _, c in net.cells_and_names() if isinstance(c, ms.nn.Conv2d)]
    assert len(convs) == 4 + 2 * (1 + 2 + 4 + 1)
    assert [c.out_channels for c in convs if c.stride == (1, 1, 2, 2) or c.stride == (2, 2)] == [64, 128, 256, 512]


@pytest.mark.parametrize(
    "size,expected", [((112, 96), (7, 6)), ((112, 112), (7, 7)), ((32, 32), (2, 2)), ((113, 97), (8, 7))]
)
def test_feature_map_size(size, expected):
    assert feature_map_size(size) == expected


def test_registry_lists_and_rejects():
    assert {"sphere4", "sphere10", "sphere20a", "sphere36", "sphere64", "mobilefacenet", "iresnet50"} <= set(
        BACKBONES.names()
    )
    with pytest.raises(KeyError, match="unknown backbone 'sphere21'"):
        build_backbone("sphere21")


def test_small_variants_run():
    for name in ("sphere4", "sphere10"):
        net = build_backbone(name, embedding_size=16, image_size=(32, 32), width=0.25)
        assert net(ms.Tensor(np.zeros((2, 3, 32, 32), np.float32))).shape == (2, 16)
    assert count(build_backbone("sphere64")) > count(build_backbone("sphere20a")) > count(build_backbone("sphere10"))


def tiny_config(*extra):
    return load_config(
        [
            "--config_path=",
            "--backbone=sphere4",
            "--backbone_width=0.125",
            "--embedding_size=8",
            "--image_size=[32,32]",
            *extra,
        ]
    )


def test_embedding_bn_centres_the_embedding_over_the_batch():
    """``embedding_bn: true``: a BatchNorm1d after fc5 with its scale fixed at 1, so in training every embedding
    dimension has mean 0 and variance 1 over the batch; without the key the network has no such layer (old
    checkpoints keep their parameter names)."""
    plain = build_backbone_from_config(tiny_config())
    assert plain.embedding_bn is None
    assert not [p.name for p in plain.get_parameters() if "embedding_bn" in p.name]
    net = build_backbone_from_config(tiny_config("--embedding_bn=true"))
    assert {p.name for p in net.trainable_params() if "embedding_bn" in p.name} == {"embedding_bn.beta"}
    assert not net.embedding_bn.gamma.requires_grad
    x = ms.Tensor(np.random.default_rng(0).normal(size=(16, 3, 32, 32)).astype(np.float32))
    net.set_train(True)
    out = net(x).asnumpy()
    raw = net.fc5(net.flatten(net.features(x))).asnumpy()
    assert raw.std(axis=0).min() > 0 and np.abs(raw.mean(axis=0)).max() > 1e-3
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=0), raw.var(axis=0) / (raw.var(axis=0) + 1e-5), rtol=1e-3)


def test_sphere_only_keys_are_refused_for_other_backbones():
    with pytest.raises(ConfigError, match="config key 'embedding_bn' does not apply to backbone 'mobilefacenet'"):
        build_backbone_from_config(
            tiny_config("--backbone=mobilefacenet", "--backbone_width=1.0", "--embedding_bn=true")
        )
