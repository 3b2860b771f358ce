"""The CPU kernels as one accelerator, applied to a network after it is built (and, for inference, after its
BatchNorms are folded): each ``nn.Conv2d`` a kernel can run (dense or depthwise), ``nn.BatchNorm2d`` and ``nn.PReLU``
is replaced by its kernel cell, which takes over the layer's Parameters, so parameter names, checkpoints and the
optimizer's view are unchanged.

The config key ``cpu_kernels`` decides: ``auto`` applies them to CPU runs that train or evaluate a checkpoint, when
every kernel library builds (compiled once on first use; a failure is logged once and the native layers are kept);
``off`` never. GPU and Ascend runs and exports always keep MindSpore's own layers.
"""

import logging

from mindspore import nn

from src.kernels.batchnorm import CpuBatchNorm2d
from src.kernels.build import KernelBuildError
from src.kernels.conv import KernelConv2d, kernel_of
from src.kernels.library import build_all
from src.kernels.prelu import CpuPReLU

SETTINGS = ("auto", "off")
LOG = logging.getLogger("facerec.kernels")
_decisions = {}  # (setting, device_target) -> bool, once per process


def kernels_enabled(setting, device_target):
    """Whether the kernels run for ``cpu_kernels`` = ``setting`` on ``device_target``: ``auto`` on the CPU when
    every kernel library builds (compiled here if needed, nothing loaded: call it before the device is set up, as
    ``cpu_isa`` depends on it). The answer, and the warning of a failed build, come once per process."""
    if setting not in SETTINGS:
        raise ValueError(f"cpu_kernels must be one of {', '.join(SETTINGS)}, got {setting!r}")
    if setting == "off" or device_target != "CPU":
        return False
    key = (setting, device_target)
    if key not in _decisions:
        try:
            build_all()
            _decisions[key] = True
        except KernelBuildError as error:
            LOG.warning("cpu_kernels auto: keeping MindSpore's own layers, a CPU kernel did not build: %s", error)
            _decisions[key] = False
    return _decisions[key]


def stand_in(layer):
    """The kernel cell for ``layer``, or None when no kernel runs it."""
    if isinstance(layer, nn.Conv2d):
        return KernelConv2d(layer) if kernel_of(layer) else None
    if isinstance(layer, nn.BatchNorm2d):
        return CpuBatchNorm2d(layer)
    if isinstance(layer, nn.PReLU):
        return CpuPReLU(layer)
    return None


def apply_cpu_kernels(network):
    """Replace, in place, every layer of ``network`` a kernel can run by its kernel cell (same Parameters and
    names); returns {"replaced": n, "convolutions_left": m}, m counting the ``nn.Conv2d`` no kernel runs."""
    names = {id(param): param.name for param in network.get_parameters()}
    replaced = left = 0
    for _, cell in list(network.cells_and_names()):
        for child_name, child in list(cell.name_cells().items()):
            new = stand_in(child)
            if new is None:
                left += isinstance(child, nn.Conv2d)
                continue
            if isinstance(cell, nn.SequentialCell):
                cell[int(child_name)] = new
            else:
                setattr(cell, child_name, new)
            replaced += 1
    for param in network.get_parameters():
        param.name = names[id(param)]
    return {"replaced": replaced, "convolutions_left": left}


def accelerate(network, setting, device_target):
    """``network`` with the CPU kernels applied when ``kernels_enabled(setting, device_target)``; logs what was
    done once for the network."""
    if not kernels_enabled(setting, device_target):
        return network
    counts = apply_cpu_kernels(network)
    LOG.info("cpu_kernels %s: %d layers run through the project's CPU kernels", setting, counts["replaced"])
    if counts["convolutions_left"]:
        LOG.warning(
            "cpu_kernels %s: %d convolutions have no kernel (dilated, asymmetric padding or grouped) and run in "
            "MindSpore's own Conv2D",
            setting,
            counts["convolutions_left"],
        )
    return network
