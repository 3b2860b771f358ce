"""Device, execution mode, CPU threads and (when launched by msrun / mpirun / a rank table) data parallelism."""

import os
import re

import mindspore as ms
from mindspore.communication import get_group_size, get_rank, init

from src.model_utils.config import ConfigError
from src.model_utils.cpu_isa import apply_cpu_isa

MODES = {"GRAPH": ms.GRAPH_MODE, "PYNATIVE": ms.PYNATIVE_MODE}
# Environment variables by which each launcher announces a multi-process run.
LAUNCHER_VARIABLES = ("MS_WORKER_NUM", "RANK_TABLE_FILE", "OMPI_COMM_WORLD_SIZE")
_cpu_threads = []
_isa_lines = []  # what cpu_isa did, from the first init_device of this process


def set_cpu_threads(count):
    """Set the CPU operator thread count; MindSpore allows this once per process, later calls keep the first."""
    if not _cpu_threads:
        ms.device_context.cpu.op_tuning.threads_num(count)
        _cpu_threads.append(count)
    return _cpu_threads[0]


def configured_cpu_threads():
    """The CPU operator thread count this process set, else the cores it may run on."""
    return _cpu_threads[0] if _cpu_threads else len(os.sched_getaffinity(0))


def launched_distributed():
    """True when a launcher started this process as one of several workers."""
    return any(os.environ.get(name) for name in LAUNCHER_VARIABLES)


def cpu_threads(cfg):
    """``cfg.num_threads``, or (null) the number of cores this process may run on (its CPU affinity, which
    follows taskset and cgroup cpusets)."""
    return cfg.num_threads or len(os.sched_getaffinity(0))


def init_device(cfg, kernel_convolutions=False):
    """Select ``cfg.device_target`` and ``cfg.mode``; returns (rank, group_size).

    On the CPU, ``cfg.cpu_isa`` caps oneDNN's instruction set first (src/model_utils/cpu_isa.py): this must come
    before MindSpore runs its first CPU operator. ``kernel_convolutions``: the run's convolutions go through the
    project's CPU kernels (``src.kernels.accelerate.kernels_enabled``), so ``auto`` leaves oneDNN uncapped.
    Standalone runs use ``cfg.device_id``. Under a launcher, ``mindspore.communication.init()`` picks the backend
    for the device (HCCL on Ascend, NCCL on GPU, the CPU collective library on CPU), the device id follows the local
    rank, and gradients are averaged over ranks (data parallel).
    """
    line = apply_cpu_isa(cfg.cpu_isa, cfg.device_target, kernel_convolutions=kernel_convolutions)
    if not _isa_lines:
        _isa_lines.append(line)
    distributed = launched_distributed()
    device_id = int(os.environ.get("DEVICE_ID", cfg.device_id))
    if cfg.device_target == "CPU":
        device_id = 0
    try:
        ms.set_device(cfg.device_target, device_id)
    except RuntimeError as err:
        supported = re.search(r"supports one of the (\[.*?\])", str(err))
        if supported is None:
            raise
        raise ConfigError(
            f"config key 'device_target': {cfg.device_target} is not available in this MindSpore "
            f"installation (it supports {supported.group(1)}): choose one of those, or install "
            f"MindSpore's {cfg.device_target} build and its drivers"
        ) from None
    ms.set_context(mode=MODES[cfg.mode])
    if cfg.device_target == "CPU":
        set_cpu_threads(cpu_threads(cfg))
    ms.set_seed(cfg.seed)
    if not distributed:
        return 0, 1
    init()
    rank, group_size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(
        parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=group_size
    )
    return rank, group_size


def describe_device(cfg):
    """One line for the run's log: the device, and on the CPU the operator threads and what ``cpu_isa`` did with
    oneDNN's instruction set when this process first set up its device."""
    if cfg.device_target != "CPU":
        return f"device {cfg.device_target} {cfg.mode}"
    isa = _isa_lines[0] if _isa_lines else f"cpu_isa {cfg.cpu_isa}: not applied yet"
    return f"device CPU {cfg.mode}, {configured_cpu_threads()} operator threads, {isa}"
