"""A first-run check of a machine, before booking a cluster of it:

    python tools/check_device.py --device_target GPU|Ascend|CPU [--workers N]

1. the versions: MindSpore (the package needs 2.10), and on GPU the CUDA runtime (the 2.10 wheel carries plugins
   for CUDA 11.1 and 11.6) and the NVIDIA driver, on Ascend CANN (8.2, 8.3, 8.5, 9.0 or 9.1, the list the 2.10
   wheel checks itself against) and the NPU driver, where they are readable;
2. one training step of a tiny network (the project's TrainStep, in GRAPH mode) on the device: finite, and the
   weights moved;
3. one AllReduce across the visible devices (``--workers``, default all of them; 2 processes on the CPU), through
   msrun, as the launchers start a data-parallel run.

Prints one line per check and exits 1 after the first failure (the later checks need the earlier ones), naming
what failed. Unlike ``mindspore.run_check()``, which catches every exception and only prints, any failure here
is an exit status. Only ``--device_target CPU`` has run here (tests/test_check_device.py); the GPU and Ascend
paths follow MindSpore 2.10's documentation and its own version checks.
"""

import argparse
import ctypes
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # Run as a script: make `src` importable.
    sys.path.insert(0, ROOT)

MINDSPORE = "2.10"
CUDA = ("11.1", "11.6")
CANN = ("8.2", "8.3", "8.5", "9.0", "9.1")
ASCEND_HOME = "/usr/local/Ascend"
CPU_WORKERS = 2
TINY = [
    "--backbone=sphere4",
    "--backbone_width=0.125",
    "--embedding_size=8",
    "--image_size=[16, 16]",
    "--head={type: cosface}",
    "--mode=GRAPH",
    "--num_threads=1",
]


class CheckFailed(RuntimeError):
    """One check failed; the message says which and what to do."""


def key_value(path, key="Version"):
    """The value of ``key=value`` in an Ascend ``version.info`` file, None if unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                name, _, value = line.strip().partition("=")
                if name == key:
                    return value
    except OSError:
        return None
    return None


def major_minor(text):
    return ".".join(text.split(".")[:2])


def cuda_runtime():
    """The CUDA runtime version ('11.6') of the libcudart the loader finds, None without one."""
    for name in ("libcudart.so", "libcudart.so.11.0"):
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        number = ctypes.c_int()
        if library.cudaRuntimeGetVersion(ctypes.byref(number)) == 0:
            return f"{number.value // 1000}.{number.value % 1000 // 10}"
    return None


def nvidia_driver():
    if shutil.which("nvidia-smi") is None:
        return None
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.split()[0] if result.returncode == 0 and result.stdout.split() else None


def cann_version():
    """CANN's version from its compiler's version.info, where MindSpore reads it (``ASCEND_HOME_PATH``)."""
    homes = [os.environ.get("ASCEND_HOME_PATH"), os.path.join(ASCEND_HOME, "ascend-toolkit", "latest")]
    for home in filter(None, homes):
        found = key_value(os.path.join(home, "compiler", "version.info"))
        if found:
            return found
    return None


def versions(device):
    """[(what, found, needed, fits)]: found is None when unreadable (reported, not a failure)."""
    import mindspore as ms

    rows = [("MindSpore", ms.__version__, MINDSPORE, major_minor(ms.__version__) == MINDSPORE)]
    if device == "GPU":
        found = cuda_runtime()
        rows.append(("CUDA runtime", found, " or ".join(CUDA), found in CUDA))
        rows.append(("NVIDIA driver", nvidia_driver(), "one that supports the CUDA runtime", True))
    if device == "Ascend":
        found = cann_version()
        rows.append(("CANN", found, ", ".join(CANN), found is not None and major_minor(found) in CANN))
        driver = key_value(os.path.join(ASCEND_HOME, "driver", "version.info"))
        rows.append(("NPU driver", driver, "the one released with that CANN", True))
    return rows


def check_versions(device):
    for what, found, needed, fits in versions(device):
        if found is None:
            if what in ("CUDA runtime", "CANN"):
                raise CheckFailed(f"{what}: not found; MindSpore {MINDSPORE} on {device} needs {needed}")
            print(f"  {what}: not readable here (needs {needed})")
        elif not fits:
            raise CheckFailed(f"{what} {found}: this package needs {needed}")
        else:
            print(f"  {what} {found} (needs {needed}): ok")


def tiny_config(device, *extra):
    from src.model_utils.config import load_config

    return load_config([f"--device_target={device}", *TINY, *extra])


def check_training_step(device):
    """One step of sphere4 (width 1/8) + CosFace on a random batch, as train.py builds it."""
    import mindspore as ms
    import numpy as np

    from src.model_utils.device import init_device
    from src.train.loop import build_training

    cfg = tiny_config(device, "--cpu_kernels=off")
    init_device(cfg)
    batch, classes = 4, 5
    step, _ = build_training(cfg, classes, 2, batch)
    before = {p.name: p.asnumpy().copy() for p in step.network.trainable_params()}
    rng = np.random.default_rng(0)
    images = ms.Tensor(rng.uniform(-1, 1, (batch, 3, *cfg.image_size)).astype(np.float32))
    loss, _, finite = step(images, ms.Tensor(np.arange(batch, dtype=np.int32) % classes))
    if not bool(finite) or not np.isfinite(float(loss)):
        raise CheckFailed(f"training step on {device}: the loss or a gradient is not finite (loss {float(loss)})")
    moved = [p.name for p in step.network.trainable_params() if not np.array_equal(p.asnumpy(), before[p.name])]
    if not moved:
        raise CheckFailed(f"training step on {device}: finite, but no weight changed")
    print(f"  training step on {device}: loss {float(loss):.4f}, {len(moved)} of {len(before)} weights updated: ok")


def visible_devices(device):
    if device == "CPU":
        return CPU_WORKERS
    import mindspore as ms

    module = ms.device_context.gpu if device == "GPU" else ms.device_context.ascend
    return module.device_count()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def allreduce_worker(device, out):
    """Under msrun: each worker all-reduces 1.0; the sum is the worker count on every rank."""
    import mindspore as ms

    from src.model_utils.device import init_device
    from src.train.loop import AnyRank

    rank, workers = init_device(tiny_config(device))
    total = float(AnyRank()(ms.Tensor(1.0)).asnumpy())
    with open(os.path.join(out, f"rank{rank}.json"), "w", encoding="utf-8") as f:
        json.dump({"workers": workers, "sum": total}, f)


def check_allreduce(device, workers):
    if workers < 2:
        print(f"  AllReduce: {workers} {device} device visible, nothing to reduce across")
        return
    msrun = os.path.join(os.path.dirname(sys.executable), "msrun")
    msrun = msrun if os.path.exists(msrun) else shutil.which("msrun")
    if msrun is None:
        raise CheckFailed("AllReduce: msrun not found (it comes with MindSpore)")
    with tempfile.TemporaryDirectory(prefix="check_device_") as out:
        command = [
            msrun,
            f"--worker_num={workers}",
            f"--local_worker_num={workers}",
            "--master_addr=127.0.0.1",
            f"--master_port={free_port()}",
            "--join=True",
            f"--log_dir={os.path.join(out, 'log')}",
            os.path.abspath(__file__),
            f"--device_target={device}",
            f"--allreduce_worker={out}",
        ]
        env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        process = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True, check=False, timeout=600)
        results = []
        for rank in range(workers):
            path = os.path.join(out, f"rank{rank}.json")
            if not os.path.exists(path):
                logs = sorted(glob.glob(os.path.join(out, "log", "worker_*.log")))
                tail = "".join(open(p, encoding="utf-8", errors="replace").read()[-1500:] for p in logs)
                error = [line for line in tail.splitlines() if re.search(r"Error|error", line)][-3:]
                raise CheckFailed(
                    f"AllReduce across {workers} {device} devices: worker {rank} did not finish (msrun exit "
                    f"{process.returncode}): {' | '.join(error) or process.stdout[-500:]}"
                )
            with open(path, encoding="utf-8") as f:
                results.append(json.load(f)["sum"])
    if any(value != workers for value in results):
        raise CheckFailed(f"AllReduce across {workers} {device} devices: sums {results}, expected {workers} each")
    print(f"  AllReduce across {workers} {device} devices (msrun): ok")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device_target", choices=("CPU", "GPU", "Ascend"), required=True)
    parser.add_argument("--workers", type=int, help="devices for the AllReduce (default: all visible; CPU: 2)")
    parser.add_argument("--allreduce_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.allreduce_worker:
        allreduce_worker(args.device_target, args.allreduce_worker)
        return 0
    device = args.device_target
    print(f"check_device: {device}")
    try:
        check_versions(device)
        check_training_step(device)
        check_allreduce(device, args.workers or visible_devices(device))
    except Exception as err:  # noqa: BLE001 (every failure is the answer: an exit status and its message)
        what = str(err) if isinstance(err, CheckFailed) else f"{type(err).__name__}: {err}"
        print(f"check_device: FAILED: {what}", file=sys.stderr)
        return 1
    print(f"check_device: {device} ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
