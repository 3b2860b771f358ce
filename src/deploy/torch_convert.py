"""PyTorch face-recognition weights as MindSpore parameters (the library of tools/convert_torch.py).

Supported layouts: ``mobilefacenet`` (MobileFaceNet, Chen et al. 2018, in the layout of the common PyTorch
implementation: ``conv1``/``dw_conv1``/``blocks.i.conv.j``/``conv2``/``linear7``/``linear1``) and
``iresnet18/34/50/100`` (ArcFace IR networks, Deng et al. 2019, in insightface's arcface_torch layout).
The checkpoint is read with ``torch.load(..., weights_only=True)`` (legacy pickles and zip files); it may
be a bare state_dict or a dict holding one under ``net_state_dict`` or ``state_dict``, and ``module.``
prefixes (DataParallel) are removed.

Every PyTorch tensor name is mapped explicitly, per backbone. Conversion fails, naming the tensor, on a
PyTorch tensor the mapping does not know, on a mapped tensor that is missing, on a shape mismatch, and on a
MindSpore parameter left unfilled; only ``num_batches_tracked`` buffers are ignored. The result loads with
``ms.load_checkpoint`` + ``ms.load_param_into_net(net, strict_load=True)``.

PyTorch is an optional dependency, needed only to read the ``.pt``/``.ckpt`` file (``load_torch_state_dict``).
"""

import functools

import numpy as np

from src.network import build_backbone
from src.network.iresnet import DEPTHS as IRESNET_DEPTHS
from src.network.mobilefacenet import BOTTLENECK_SETTINGS

IGNORED_SUFFIX = ".num_batches_tracked"
STATE_DICT_KEYS = ("net_state_dict", "state_dict")
PREFIX = "module."


class ConversionError(ValueError):
    """A PyTorch checkpoint does not match the MindSpore network; the message names the tensor."""


def _conv(prefix):
    return {f"{prefix}.weight": f"{prefix}.weight"}


def _dense(prefix):
    return {f"{prefix}.weight": f"{prefix}.weight", f"{prefix}.bias": f"{prefix}.bias"}


def _batch_norm(prefix):
    return {
        f"{prefix}.weight": f"{prefix}.gamma",
        f"{prefix}.bias": f"{prefix}.beta",
        f"{prefix}.running_mean": f"{prefix}.moving_mean",
        f"{prefix}.running_var": f"{prefix}.moving_variance",
    }


def _prelu(prefix):
    return {f"{prefix}.weight": f"{prefix}.w"}


def mobilefacenet_mapping():
    """PyTorch name -> MindSpore name for ``src.network.mobilefacenet.MobileFaceNet``."""
    mapping = {}
    for block in ("conv1", "dw_conv1", "conv2"):
        mapping.update({**_conv(f"{block}.conv"), **_batch_norm(f"{block}.bn"), **_prelu(f"{block}.prelu")})
    for block in ("linear7", "linear1"):
        mapping.update({**_conv(f"{block}.conv"), **_batch_norm(f"{block}.bn")})
    num_blocks = sum(repeats for _, _, repeats, _ in BOTTLENECK_SETTINGS)
    for i in range(num_blocks):
        layer = f"blocks.{i}.conv"
        # 0 expand conv, 1 BN, 2 PReLU, 3 depthwise conv, 4 BN, 5 PReLU, 6 project conv, 7 BN.
        mapping.update(
            {
                **_conv(f"{layer}.0"),
                **_batch_norm(f"{layer}.1"),
                **_prelu(f"{layer}.2"),
                **_conv(f"{layer}.3"),
                **_batch_norm(f"{layer}.4"),
                **_prelu(f"{layer}.5"),
                **_conv(f"{layer}.6"),
                **_batch_norm(f"{layer}.7"),
            }
        )
    return mapping


def iresnet_mapping(layers):
    """PyTorch name -> MindSpore name for ``src.network.iresnet.IResNet`` with ``layers`` blocks per stage."""
    mapping = {**_conv("conv1"), **_batch_norm("bn1"), **_prelu("prelu")}
    for stage, blocks in enumerate(layers, start=1):
        for i in range(blocks):
            block = f"layer{stage}.{i}"
            mapping.update(
                {
                    **_batch_norm(f"{block}.bn1"),
                    **_conv(f"{block}.conv1"),
                    **_batch_norm(f"{block}.bn2"),
                    **_prelu(f"{block}.prelu"),
                    **_conv(f"{block}.conv2"),
                    **_batch_norm(f"{block}.bn3"),
                }
            )
            if i == 0:  # Every stage starts with stride 2, so its first block has a projection shortcut.
                mapping.update({**_conv(f"{block}.downsample.0"), **_batch_norm(f"{block}.downsample.1")})
    mapping.update({**_batch_norm("bn2"), **_dense("fc"), **_batch_norm("features")})
    return mapping


MAPPINGS = {"mobilefacenet": mobilefacenet_mapping}
MAPPINGS.update({name: functools.partial(iresnet_mapping, layers) for name, layers in IRESNET_DEPTHS.items()})


def extract_state_dict(checkpoint):
    """The state_dict inside a loaded checkpoint (bare, or under 'net_state_dict'/'state_dict'), without
    'module.' prefixes."""
    if not isinstance(checkpoint, dict):
        raise ConversionError(f"expected a state_dict or a dict holding one, got {type(checkpoint).__name__}")
    for key in STATE_DICT_KEYS:
        if key in checkpoint:
            checkpoint = checkpoint[key]
            break
    return {(name[len(PREFIX) :] if name.startswith(PREFIX) else name): value for name, value in checkpoint.items()}


def load_torch_state_dict(path):
    """Read a PyTorch checkpoint (legacy pickle or zip) with ``weights_only=True``; return its state_dict."""
    import torch  # Optional dependency, needed only here.

    return extract_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _to_numpy(value):
    if hasattr(value, "detach"):  # torch.Tensor, possibly float16/bfloat16.
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def convert(backbone, state_dict, embedding_size=None, image_size=None):
    """Map a PyTorch state_dict onto the MindSpore backbone ``backbone``.

    Returns {MindSpore parameter name: float32 array} covering every parameter of
    ``build_backbone(backbone, embedding_size=..., image_size=...)`` (``None`` keeps the backbone's default).
    Raises ConversionError naming the tensor on an unmapped or missing tensor or a shape mismatch.
    """
    if backbone not in MAPPINGS:
        raise ConversionError(f"no PyTorch mapping for backbone '{backbone}'; supported: {', '.join(sorted(MAPPINGS))}")
    kwargs = {
        key: value
        for key, value in (("embedding_size", embedding_size), ("image_size", image_size))
        if value is not None
    }
    shapes = {param.name: tuple(param.shape) for param in build_backbone(backbone, **kwargs).get_parameters()}
    mapping = MAPPINGS[backbone]()

    for torch_name in state_dict:
        if torch_name not in mapping and not torch_name.endswith(IGNORED_SUFFIX):
            raise ConversionError(f"PyTorch tensor '{torch_name}' has no MindSpore counterpart in '{backbone}'")
    params = {}
    for torch_name, ms_name in mapping.items():
        if torch_name not in state_dict:
            raise ConversionError(f"PyTorch tensor '{torch_name}' (for MindSpore parameter '{ms_name}') is missing")
        if ms_name not in shapes:
            raise ConversionError(f"PyTorch tensor '{torch_name}' maps to '{ms_name}', which '{backbone}' lacks")
        value = _to_numpy(state_dict[torch_name])
        if value.shape != shapes[ms_name]:
            raise ConversionError(
                f"shape mismatch for PyTorch tensor '{torch_name}' -> '{ms_name}': "
                f"{value.shape} in PyTorch, {shapes[ms_name]} in MindSpore"
            )
        params[ms_name] = value
    unfilled = [name for name in shapes if name not in params]
    if unfilled:
        raise ConversionError(f"MindSpore parameter '{unfilled[0]}' is left unfilled ({len(unfilled)} unfilled in all)")
    return {name: params[name] for name in shapes}


def save_checkpoint(params, output):
    """Write {name: array} as a MindSpore checkpoint (created read-only by MindSpore)."""
    import mindspore as ms

    ms.save_checkpoint(
        [{"name": name, "data": ms.Tensor(value)} for name, value in params.items()], output, crc_check=True
    )
