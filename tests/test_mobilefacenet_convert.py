"""MobileFaceNet (Chen et al. 2018) and iResNet (Deng et al. 2019) backbones, and their PyTorch conversion.

The real-model tests read ../shared/models/mobilefacenet_casia (relative to the project root) and skip when it
is absent; tests that read or build PyTorch objects skip when the optional torch package is not installed.
"""

import importlib.util
from pathlib import Path

import cv2
import mindspore as ms
import numpy as np
import pytest

from src.deploy.torch_convert import (
    ConversionError,
    convert,
    extract_state_dict,
    iresnet_mapping,
    load_torch_state_dict,
    mobilefacenet_mapping,
    save_checkpoint,
)
from src.network import build_backbone
from tools.convert_torch import main

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT.parent / "shared" / "models" / "mobilefacenet_casia"
REFERENCE_DIR = MODEL_DIR / "reference"

requires_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="PyTorch is not installed (optional: pip install torch==2.13.0)"
)


def cosine(a, b):
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def count(params):
    return sum(param.size for param in params)


def synthetic_state_dict(backbone, mapping):
    """A PyTorch-named state_dict of zeros with the shapes of the MindSpore ``backbone``."""
    shapes = {param.name: param.shape for param in build_backbone(backbone).get_parameters()}
    return {torch_name: np.zeros(shapes[ms_name], np.float32) for torch_name, ms_name in mapping.items()}


def load_converted(backbone, path, **kwargs):
    net = build_backbone(backbone, **kwargs)
    not_loaded = ms.load_param_into_net(net, ms.load_checkpoint(str(path)), strict_load=True)
    assert not_loaded == ([], [])
    net.set_train(False)
    return net


# ---------------------------------------------------------------- architecture


def test_mobilefacenet_parameter_counts():
    net = build_backbone("mobilefacenet")
    # The shared README: 999,552 trainable values in 183 tensors; 1,019,186 values in all, of which 50 are
    # the num_batches_tracked counters MindSpore does not have.
    assert count(net.trainable_params()) == 999_552
    assert len(net.trainable_params()) == 183
    assert count(net.get_parameters()) == 1_019_186 - 50


def test_iresnet50_parameter_count():
    net = build_backbone("iresnet50")
    assert count(net.trainable_params()) == 43_590_336
    assert not net.features.gamma.requires_grad  # insightface fixes the scale of the last BatchNorm at 1.


@pytest.mark.parametrize(
    "backbone, image_size, embedding_size",
    [
        ("mobilefacenet", (112, 96), 128),
        ("mobilefacenet", (112, 112), 128),
        ("iresnet18", (112, 96), 256),
    ],
)
def test_output_shapes(backbone, image_size, embedding_size):
    net = build_backbone(backbone, embedding_size=embedding_size, image_size=image_size)
    net.set_train(False)
    out = net(ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, *image_size), np.float32)))
    assert out.shape == (2, embedding_size)


def test_linear7_kernel_follows_image_size():
    assert build_backbone("mobilefacenet").linear7.conv.weight.shape == (512, 1, 7, 6)
    assert build_backbone("mobilefacenet", image_size=(112, 112)).linear7.conv.weight.shape == (512, 1, 7, 7)


# ---------------------------------------------------------------- conversion errors (no torch needed)


@pytest.fixture(scope="module")
def mobilefacenet_state_dict():
    return synthetic_state_dict("mobilefacenet", mobilefacenet_mapping())


def test_synthetic_state_dict_converts_and_ignores_num_batches_tracked(mobilefacenet_state_dict):
    state_dict = {**mobilefacenet_state_dict, "conv1.bn.num_batches_tracked": np.array(7)}
    params = convert("mobilefacenet", state_dict)
    assert len(params) == 283 and params["conv1.prelu.w"].dtype == np.float32


def test_unmapped_key_is_named(mobilefacenet_state_dict):
    state_dict = {**mobilefacenet_state_dict, "blocks.3.conv.8.weight": np.zeros(64, np.float32)}
    with pytest.raises(ConversionError, match=r"'blocks\.3\.conv\.8\.weight' has no MindSpore counterpart"):
        convert("mobilefacenet", state_dict)


def test_missing_key_is_named(mobilefacenet_state_dict):
    state_dict = dict(mobilefacenet_state_dict)
    del state_dict["linear7.bn.running_var"]
    with pytest.raises(ConversionError, match=r"'linear7\.bn\.running_var' .*'linear7\.bn\.moving_variance'.* missing"):
        convert("mobilefacenet", state_dict)


def test_shape_mismatch_is_named(mobilefacenet_state_dict):
    state_dict = {**mobilefacenet_state_dict, "conv2.conv.weight": np.zeros((512, 128, 3, 3), np.float32)}
    with pytest.raises(ConversionError, match=r"shape mismatch for PyTorch tensor 'conv2\.conv\.weight'"):
        convert("mobilefacenet", state_dict)


def test_image_size_mismatch_names_linear7(mobilefacenet_state_dict):
    with pytest.raises(ConversionError, match=r"'linear7\.conv\.weight'.*\(512, 1, 7, 6\).*\(512, 1, 7, 7\)"):
        convert("mobilefacenet", mobilefacenet_state_dict, image_size=(112, 112))


def test_unknown_backbone():
    with pytest.raises(ConversionError, match="no PyTorch mapping for backbone 'sphere20a'"):
        convert("sphere20a", {})


def test_iresnet_mappings_cover_every_parameter():
    for name, layers in (("iresnet18", (2, 2, 2, 2)), ("iresnet100", (3, 13, 30, 3))):
        mapping = iresnet_mapping(layers)
        names = {param.name for param in build_backbone(name).get_parameters()}
        assert sorted(mapping.values()) == sorted(names)


def test_extract_state_dict_unwraps_and_strips_module_prefix():
    weights = {"module.conv1.weight": 1, "module.bn1.weight": 2}
    expected = {"conv1.weight": 1, "bn1.weight": 2}
    assert extract_state_dict({"epoch": 3, "net_state_dict": weights}) == expected
    assert extract_state_dict({"state_dict": weights}) == expected
    assert extract_state_dict(expected) == expected
    with pytest.raises(ConversionError, match="got list"):
        extract_state_dict([1, 2])


# ---------------------------------------------------------------- PyTorch files


@requires_torch
@pytest.mark.parametrize("zip_format", [True, False])
def test_load_torch_state_dict_zip_and_legacy(tmp_path, zip_format):
    import torch

    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"module.fc.weight": torch.ones(2, 3)}}, path, _use_new_zipfile_serialization=zip_format)
    state_dict = load_torch_state_dict(path)
    assert list(state_dict) == ["fc.weight"] and state_dict["fc.weight"].shape == (2, 3)


# ---------------------------------------------------------------- the real MobileFaceNet


@pytest.fixture(scope="module")
def converted_mobilefacenet(tmp_path_factory):
    if not (MODEL_DIR / "068.ckpt").is_file():
        pytest.skip("../shared/models/mobilefacenet_casia/068.ckpt is absent (shared material in ../shared)")
    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed (optional: pip install torch==2.13.0)")
    output = tmp_path_factory.mktemp("converted") / "mobilefacenet.ckpt"
    main(["--backbone", "mobilefacenet", "--torch_ckpt", str(MODEL_DIR / "068.ckpt"), "--output", str(output)])
    return load_converted("mobilefacenet", output)


@pytest.fixture(scope="module")
def aligned_faces():
    """The 20 aligned reference faces, RGB uint8, 20x112x96x3."""
    names = (REFERENCE_DIR / "emb20.txt").read_text().split()
    images = [cv2.imread(str(REFERENCE_DIR / "aligned" / name), cv2.IMREAD_COLOR) for name in names]
    assert len(images) == 20 and all(image is not None for image in images)
    return np.stack([image[:, :, ::-1] for image in images])


def embed(net, images):
    """RGB, (x - 127.5) / 128, CHW: the preprocessing MobileFaceNet was trained with."""
    batch = ((images.astype(np.float32) - 127.5) / 128).transpose(0, 3, 1, 2)
    return net(ms.Tensor(np.ascontiguousarray(batch))).asnumpy()


@pytest.mark.parametrize("flip, reference", [(False, "emb20.npy"), (True, "emb20_flip.npy")])
def test_converted_mobilefacenet_reproduces_reference_embeddings(
    converted_mobilefacenet, aligned_faces, flip, reference
):
    images = aligned_faces[:, :, ::-1] if flip else aligned_faces
    similarity = cosine(embed(converted_mobilefacenet, images), np.load(REFERENCE_DIR / reference))
    assert similarity.shape == (20,)
    assert similarity.min() >= 0.9999, similarity


def test_cli_refuses_to_overwrite(tmp_path):
    output = tmp_path / "exists.ckpt"
    output.write_bytes(b"")
    with pytest.raises(SystemExit, match="exists"):
        main(["--backbone", "mobilefacenet", "--torch_ckpt", "unused.pth", "--output", str(output)])


# ---------------------------------------------------------------- iResNet-50 against a PyTorch forward pass


def torch_iresnet(layers):
    """A PyTorch iResNet for 112x112 in insightface's arcface_torch layout (module names and order), with
    PyTorch's default initialisation."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, in_channels, channels, stride):
            super().__init__()
            self.bn1 = nn.BatchNorm2d(in_channels, eps=1e-5)
            self.conv1 = nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels, eps=1e-5)
            self.prelu = nn.PReLU(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(channels, eps=1e-5)
            self.downsample = None
            if stride != 1 or in_channels != channels:
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels, eps=1e-5)
                )

        def forward(self, x):
            out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
            return out + (x if self.downsample is None else self.downsample(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
            self.prelu = nn.PReLU(64)
            in_channels = 64
            for index, (blocks, channels) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
                setattr(
                    self,
                    f"layer{index}",
                    nn.Sequential(
                        *[
                            Block(in_channels if i == 0 else channels, channels, 2 if i == 0 else 1)
                            for i in range(blocks)
                        ]
                    ),
                )
                in_channels = channels
            self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
            self.dropout = nn.Dropout(p=0.0)
            self.fc = nn.Linear(512 * 7 * 7, 512)
            self.features = nn.BatchNorm1d(512, eps=1e-5)
            self.features.weight.requires_grad = False

        def forward(self, x):
            x = self.prelu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.features(self.fc(self.dropout(self.bn2(x).flatten(1))))

    return Net()


@pytest.fixture(scope="module")
def torch_iresnet50():
    """insightface-layout iResNet-50 with random BatchNorm statistics/affines and PReLU slopes, eval mode."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional: pip install torch==2.13.0)")
    torch.manual_seed(0)
    net = torch_iresnet((3, 4, 14, 3)).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                if module.weight.requires_grad:
                    module.weight.uniform_(0.5, 1.5)
            elif isinstance(module, torch.nn.PReLU):
                module.weight.uniform_(0.0, 0.5)
    return net


def test_iresnet50_conversion_matches_torch(torch_iresnet50, tmp_path):
    import torch

    state_dict = torch_iresnet50.state_dict()
    assert sum(p.numel() for p in torch_iresnet50.parameters() if p.requires_grad) == 43_590_336
    params = convert("iresnet50", state_dict)
    assert len(params) == len([k for k in state_dict if not k.endswith("num_batches_tracked")])
    output = tmp_path / "iresnet50.ckpt"
    save_checkpoint(params, str(output))
    net = load_converted("iresnet50", output)

    images = np.random.default_rng(1).uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32)
    with torch.no_grad():
        expected = torch_iresnet50(torch.from_numpy(images)).numpy()
    actual = net(ms.Tensor(images)).asnumpy()
    assert actual.shape == (2, 512)
    assert cosine(actual, expected).min() >= 0.9999
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_iresnet50_image_size_mismatch_names_fc(torch_iresnet50):
    with pytest.raises(ConversionError, match=r"'fc\.weight'.*\(512, 25088\) in PyTorch, \(512, 21504\)"):
        convert("iresnet50", torch_iresnet50.state_dict(), image_size=(112, 96))
