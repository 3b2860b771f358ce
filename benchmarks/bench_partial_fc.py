"""Partial FC: per-worker memory and step time of the class centres, replicated vs sharded vs sharded with
sample_rate 0.1, on 1 and 2 CPU workers here, and the arithmetic for 8 and 64 devices.

    python benchmarks/bench_partial_fc.py [--classes 10000 100000 1000000] [--batch 64] [--steps 5]

Each configuration runs in its own process(es) (2 workers: msrun on this machine): a tiny backbone (Dense
128 -> 512, so the head dominates) + a CosFace head, the project's TrainStep (SGD with momentum), ``--batch``
images per worker. "head state" is the bytes of every head Parameter this worker holds: the centres and the
optimizer's buffer of their shape (``MomentumSGD``'s ``moments``; MindSpore's ``nn.SGD``, used before, kept two:
``accum`` and ``stat``); the gradient of the centres is one more such buffer during the step. Runs whose
estimated peak (``peak_estimate_mib``) is above 7 GiB per process would not fit two at a time on this shared
machine (the replicated head, one worker, and sharded r = 1.0 at 1M classes): they are listed with their head
state from the arithmetic and not run.
"""

import argparse
import json
import logging
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))

from benchmarks import common

EMBEDDING, INPUT, OPTIMIZER_BUFFERS = 512, 128, 1
MIB = 1024.0 * 1024.0
LOG = logging.getLogger("facerec.bench")
CONFIG_VARIABLE = "BENCH_PARTIAL_FC_WORKER"
MODES = (("replicated", False, 1.0), ("sharded", True, 1.0), ("sharded r=0.1", True, 0.1))
# Per-process budget on this shared 23 GiB machine: larger runs are reported from the arithmetic only.
RUN_LIMIT_MIB = 7 * 1024
COLUMNS = [
    ("classes", "classes"),
    ("mode", "head"),
    ("workers", "workers"),
    ("state_mib", "head state / worker (MiB)"),
    ("rss_mib", "peak RSS / worker (MiB)"),
    ("step_ms", "step (ms, median)"),
    ("img_s", "images/s (all workers)"),
    ("load", "load 1/5/15"),
    ("note", "note"),
]
ARITHMETIC_COLUMNS = [
    ("classes", "classes"),
    ("devices", "devices"),
    ("replicated_mib", "replicated (MiB / device)"),
    ("sharded_mib", "sharded (MiB / device)"),
    ("allreduce_mib", "replicated: W gradient all-reduced / step (MiB)"),
    ("gather_mib", "sharded: embeddings all-gathered / step (MiB)"),
]


def head_rows(classes, workers, sharded):
    return -(-classes // workers) if sharded else classes


def state_mib(classes, workers, sharded, buffers=1 + OPTIMIZER_BUFFERS):
    """Bytes of the centres (float32) and the optimizer buffers of their shape held by one worker."""
    return head_rows(classes, workers, sharded) * EMBEDDING * 4 * buffers / MIB


def peak_estimate_mib(classes, workers, sharded, rate, batch):
    """A worker's memory by the arithmetic: the centres, the optimizer buffers, their gradient, the normalised
    copy and its gradient (4 + OPTIMIZER_BUFFERS C_r x D buffers), and about 12 (global batch x kept centres)
    float32 buffers of the forward and backward (it underestimates the peak RSS, which the benchmark measures)."""
    rows = head_rows(classes, workers, sharded)
    kept = rows if rate >= 1.0 else max(math.ceil(rate * rows), batch * workers)
    return (rows * EMBEDDING * (4 + OPTIMIZER_BUFFERS) + 12 * batch * workers * kept) * 4 / MIB


def worker(config):
    """One configuration on this process (one of ``config['workers']`` msrun workers when > 1)."""
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn
    from mindspore.common.initializer import XavierUniform

    from src.heads import MARGINS, build_head
    from src.heads.partial_fc import PartialFCHead
    from src.model_utils.device import set_cpu_threads
    from src.train.optimizer import build_optimizer
    from src.train.train_network import FaceTrainNetwork
    from src.train.train_step import TrainStep

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    workers, rank = config["workers"], 0
    set_cpu_threads(max(1, 2 // workers))
    if workers > 1:
        from mindspore.communication import get_rank, init

        init()
        rank = get_rank()
        ms.set_auto_parallel_context(
            parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=workers
        )
    classes, batch = config["classes"], config["batch"]
    backbone = nn.Dense(INPUT, EMBEDDING, weight_init=XavierUniform(), bias_init="zeros")
    if config["sharded"]:
        head = PartialFCHead(
            MARGINS.get("cosface")(classes),
            EMBEDDING,
            classes,
            workers,
            rank,
            batch,
            sample_rate=config["sample_rate"],
            seed=0,
        )
    else:
        head = build_head("cosface", embedding_size=EMBEDDING, num_classes=classes)
        head.margin.batch_statistics(workers)
    network = FaceTrainNetwork(backbone, head)
    step = TrainStep(network, build_optimizer(network.trainable_params(), np.full(100, 0.01, np.float32), 0.9, 5e-4))
    step.set_train(True)
    held = sum(p.asnumpy().nbytes for p in step.get_parameters() if "head." in p.name) / MIB
    rng = np.random.default_rng(rank)
    image = Tensor(rng.normal(size=(batch, INPUT)).astype(np.float32))
    label = Tensor(rng.integers(0, classes, batch).astype(np.int32))
    durations = common.time_steps(lambda: step(image, label)[0].asnumpy(), config["steps"], warmup=2)
    return {"rank": rank, "state_mib": round(held, 1), "step_s": [round(d, 4) for d in durations]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_workers(config, timeout=3600):
    """``config`` on 2 msrun workers; the results of both (or an error)."""
    log_dir = os.path.join(common.RESULTS_DIR, "partial_fc_msrun")
    shutil.rmtree(log_dir, ignore_errors=True)
    os.makedirs(log_dir)
    command = [
        shutil.which("msrun") or os.path.join(os.path.dirname(sys.executable), "msrun"),
        "--worker_num=2",
        "--local_worker_num=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "--join=True",
        f"--log_dir={log_dir}",
        os.path.abspath(__file__),
    ]
    # the configuration goes by environment: msrun's own options would take --worker as an abbreviation
    env = dict(
        os.environ,
        **{CONFIG_VARIABLE: json.dumps(config)},
        PYTHONPATH=common.ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    try:
        subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=common.ROOT, env=env, check=False)
    except subprocess.TimeoutExpired:
        return [{"error": f"timed out after {timeout} s"}]
    results = []
    for rank in (0, 1):
        path = os.path.join(log_dir, f"worker_{rank}.log")
        lines = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        found = [json.loads(line[len(common.RESULT_MARK) :]) for line in lines if line.startswith(common.RESULT_MARK)]
        results.append(found[-1] if found else {"error": " | ".join(lines[-3:]) or "no log"})
    return results


def summarise(config, results):
    row = {key: config[key] for key in ("classes", "workers")}
    row["mode"] = config["mode"]
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return dict(row, error=errors[0])
    step = statistics.median(max(times) for times in zip(*(r["step_s"] for r in results)))
    return dict(
        row,
        state_mib=max(r["state_mib"] for r in results),
        rss_mib=max(r["peak_rss_mib"] for r in results),
        step_ms=round(1000 * step, 1),
        img_s=round(config["batch"] * config["workers"] / step, 1),
        load="/".join(str(v) for v in results[0]["load_after"]),
    )


def arithmetic(classes_list, batch):
    rows = []
    for classes in classes_list:
        for devices in (8, 64):
            rows.append(
                {
                    "classes": classes,
                    "devices": devices,
                    "replicated_mib": round(state_mib(classes, devices, False, 2 + OPTIMIZER_BUFFERS), 1),
                    "sharded_mib": round(state_mib(classes, devices, True, 2 + OPTIMIZER_BUFFERS), 1),
                    "allreduce_mib": round(classes * EMBEDDING * 4 / MIB, 1),
                    "gather_mib": round(devices * batch * EMBEDDING * 4 / MIB, 1),
                }
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=[10000, 100000, 1000000])
    parser.add_argument("--batch", type=int, default=64, help="images per worker")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after 2 untimed)")
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "bench_partial_fc.json"))
    args = parser.parse_args()
    common.setup_logging()
    rows = []
    for classes in args.classes:
        for workers in (1, 2):
            for mode, sharded, rate in MODES:
                config = {
                    "classes": classes,
                    "workers": workers,
                    "mode": mode,
                    "sharded": sharded,
                    "sample_rate": rate,
                    "batch": args.batch,
                    "steps": args.steps,
                }
                need = peak_estimate_mib(classes, workers, sharded, rate, args.batch)
                if need > RUN_LIMIT_MIB:
                    rows.append(
                        {
                            "classes": classes,
                            "workers": workers,
                            "mode": mode,
                            "state_mib": round(state_mib(classes, workers, sharded), 1),
                            "note": f"not run: > {need / 1024:.1f} GiB / worker",
                        }
                    )
                    continue
                LOG.info("%d classes, %s, %d worker(s)", classes, mode, workers)
                start = time.time()
                results = [common.run_worker(__file__, config)] if workers == 1 else run_two_workers(config)
                row = summarise(config, results)
                rows.append(dict(row, note=f"{time.time() - start:.0f} s wall"))
                if "error" in row:
                    LOG.warning("failed: %s", row["error"])
    print(
        "\nArithmetic for more devices (float32, embedding 512, SGD with momentum: centres + optimizer "
        f"buffer + gradient; {args.batch} images per device):\n"
    )
    print(common.format_table(arithmetic(args.classes, args.batch), ARITHMETIC_COLUMNS))
    common.finish(
        "bench_partial_fc",
        args,
        rows,
        COLUMNS,
        lambda row: f"{row['classes']} classes, {row['mode']}, {row['workers']} worker(s)",
    )


if __name__ == "__main__":
    if "--worker" in sys.argv:
        common.worker_main(worker)
    elif CONFIG_VARIABLE in os.environ:
        common.worker_main(worker, ["--worker", os.environ[CONFIG_VARIABLE]])
    else:
        main()
