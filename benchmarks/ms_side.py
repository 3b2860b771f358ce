"""The MindSpore side of the benchmarks: context settings per process and loading a PyTorch twin's weights."""

import mindspore as ms
import numpy as np

from src.deploy.torch_convert import MAPPINGS, convert
from src.heads.head import legacy_names
from src.model_utils.cpu_isa import apply_cpu_isa
from src.model_utils.device import MODES

# MindSpore settings a benchmark may vary; None leaves MindSpore's own default (cpu_kernels: off, MindSpore's own
# layers), except cpu_isa, which is the project's "auto" unless given (a variant measures the slow path with
# cpu_isa=native). fold_bn (inference benchmarks): BatchNorms folded as the project's
# load_network does (the project variant folds).
SETTING_KEYS = (
    "threads",
    "jit_level",
    "graph_kernel",
    "dispatch_threads",
    "cpu_kernels",
    "cpu_isa",
    "fold_bn",
)


def setup_device(mode, settings, backbone=None):
    """The project's device setup (``init_device`` from the schema defaults, with its ``cpu_isa`` decision for a
    run of ``backbone``: uncapped when the CPU kernels run; None, as for a MINDIR: capped) when ``settings`` is
    None, else ``setup_mindspore``. Returns whether networks are to run through the CPU kernels
    (``accelerate(network, True)``): the schema's ``cpu_kernels``, or the variant's (off unless given)."""
    from src.kernels.accelerate import kernels_enabled

    if settings is None:
        from src.model_utils.config import load_config
        from src.model_utils.device import init_device

        cfg = load_config([f"--mode={mode}", "--device_target=CPU"] + ([f"--backbone={backbone}"] if backbone else []))
        kernels = backbone is not None and kernels_enabled(cfg.cpu_kernels, "CPU")
        init_device(cfg, kernels)
        return kernels
    kernels = kernels_enabled(settings.get("cpu_kernels", "off"), "CPU")
    setup_mindspore(mode, settings, kernels)
    return kernels


def accelerate(network, kernels):
    """``network``, through the CPU kernels when ``kernels`` (what ``setup_device`` returned)."""
    if kernels:
        from src.kernels.accelerate import apply_cpu_kernels

        apply_cpu_kernels(network)
    return network


def setup_mindspore(mode, settings, kernels=False):
    """CPU device, ``mode`` (GRAPH | PYNATIVE) and the ``settings`` (see SETTING_KEYS) for this process; ``kernels``:
    the networks run through the CPU kernels (for cpu_isa auto's decision)."""
    unknown = set(settings) - set(SETTING_KEYS)
    if unknown:
        raise ValueError(f"unknown MindSpore setting(s) {sorted(unknown)}; known: {SETTING_KEYS}")
    apply_cpu_isa(settings.get("cpu_isa", "auto"), kernel_convolutions=kernels)
    ms.set_device("CPU")
    ms.set_context(mode=MODES[mode])
    if settings.get("threads") is not None:
        ms.device_context.cpu.op_tuning.threads_num(settings["threads"])
    if settings.get("dispatch_threads") is not None:
        ms.runtime.dispatch_threads_num(settings["dispatch_threads"])
    if settings.get("jit_level") is not None:
        ms.set_context(jit_config={"jit_level": settings["jit_level"]})
    if settings.get("graph_kernel"):
        ms.set_context(enable_graph_kernel=True)
    ms.set_seed(1)


def backbone_parameters(backbone, arrays, embedding_size, image_size):
    """PyTorch twin backbone arrays (names without prefix) -> {MindSpore name: array}."""
    if backbone in MAPPINGS:
        return convert(backbone, arrays, embedding_size=embedding_size, image_size=image_size)
    # Sphere networks: identical names except the PReLU slopes (PyTorch 'weight', MindSpore 'w').
    from src.network import build_backbone

    params = {}
    for param in build_backbone(backbone, embedding_size=embedding_size, image_size=image_size).get_parameters():
        torch_name = param.name[:-2] + ".weight" if param.name.endswith(".w") else param.name
        params[param.name] = arrays[torch_name]
    return params


def load_twin_weights(cell, npz_path, backbone, embedding_size, image_size, prefix=""):
    """Fill ``cell`` (a backbone, or a FaceTrainNetwork when ``prefix`` is 'backbone.') from the
    PyTorch twin's arrays saved in ``npz_path``; head parameters keep their names. Every parameter of
    ``cell`` must be filled."""
    with np.load(npz_path) as data:
        arrays = dict(data)
    split = len(prefix)
    backbone_arrays = {k[split:]: v for k, v in arrays.items() if k.startswith(prefix)} if prefix else arrays
    values = {
        prefix + k: v for k, v in backbone_parameters(backbone, backbone_arrays, embedding_size, image_size).items()
    }
    if prefix:
        # The twin keeps the flat head names of before the centres/margin split (head.weight, ...).
        values.update(legacy_names({k: v for k, v in arrays.items() if k.startswith("head.")}))
    own = {p.name: p for p in cell.get_parameters()}
    missing = [name for name in own if name not in values]
    if missing:
        raise ValueError(f"{npz_path}: no value for MindSpore parameter '{missing[0]}' ({len(missing)} in all)")
    params = {
        name: ms.Parameter(ms.Tensor(values[name].astype(ms.dtype_to_nptype(own[name].dtype))), name=name)
        for name in own
        if name in values
    }
    not_loaded, _ = ms.load_param_into_net(cell, params)
    if not_loaded:
        raise ValueError(f"{npz_path}: parameters not loaded: {not_loaded[:3]}")
