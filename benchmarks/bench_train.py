"""Training throughput, MindSpore next to its PyTorch twin on the same machine, weights and batch.

    python benchmarks/bench_train.py                 # sphere20a + MobileFaceNet, CosFace head, GRAPH, batch 32
    python benchmarks/bench_train.py --full          # 3 backbones x 6 heads x GRAPH/PYNATIVE x batch 32/64
    python benchmarks/bench_train.py --explore       # also MindSpore setting variants (threads, jit level, ...)

MindSpore runs the project's own training step (FaceTrainNetwork + TrainStep + build_optimizer: SGD momentum
0.9, weight decay 5e-4) with the device set up by ``init_device`` from the schema defaults ("project"), or with
explicit settings (``--ms_settings name:threads=2,jit_level=O1``). PyTorch runs the twin network
(benchmarks/torch_twins.py) with the same initial weights (written by PyTorch, mapped into MindSpore), the
same fixed batch, SGD with the same groups, ``--threads`` intra-op threads. Every configuration runs in its own
subprocess (so its peak RSS is its own); MindSpore and PyTorch alternate within each group, in reversed order
on odd rounds, so both see the same machine load. img/s is batch / median step time after the warm-up steps
(the first of which compiles the graph); min/max come from the slowest/fastest step.
"""

import argparse
import itertools
import os
import sys
import tempfile

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))

from benchmarks import common  # noqa: E402
from benchmarks.nets import HEADS, NETWORKS, make_batch, parse_variant  # noqa: E402

LR = 0.01
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4
EXPLORE = (
    "ms-default-threads:",
    "jit-O1:threads=2,jit_level=O1",
    "jit-O2:threads=2,jit_level=O2",
    "graph-kernel:threads=2,graph_kernel=true",
    "dispatch-1:threads=2,dispatch_threads=1",
    "kernels:threads=2,cpu_kernels=auto",
)
COLUMNS = [
    ("backbone", "backbone"),
    ("head", "head"),
    ("batch", "batch"),
    ("framework", "framework"),
    ("mode", "mode"),
    ("variant", "settings"),
    ("onednn_cap", "oneDNN cap"),
    ("img_s", "img/s (median)"),
    ("img_s_min", "min"),
    ("img_s_max", "max"),
    ("ratio", "MS/PT (fastest PT)"),
    ("first_step_s", "1st step s"),
    ("loss_first", "loss@1"),
    ("peak_rss_mib", "peak RSS MiB"),
    ("load", "load 1/5/15"),
]


# --- workers ---------------------------------------------------------------------------------------------------
def init_weights(c):
    """PyTorch twin with seed 1 -> arrays in ``c['weights']`` (backbone.* and head.*)."""
    import numpy as np
    import torch

    from benchmarks import torch_twins

    torch.manual_seed(1)
    embedding_size, image_size = NETWORKS[c["backbone"]]
    net = torch_twins.FaceTrainNetwork(
        torch_twins.build_backbone(c["backbone"], embedding_size, image_size),
        torch_twins.HEADS[c["head"]](embedding_size, c["num_classes"]),
    )
    np.savez(c["weights"], **torch_twins.state_arrays(net))
    return {}


def build_torch(c):
    """The PyTorch twin's training step on the fixed batch: (step(), losses, nonfinite())."""
    import numpy as np
    import torch

    from benchmarks import torch_twins

    torch.set_num_threads(c["threads"])
    embedding_size, image_size = NETWORKS[c["backbone"]]
    net = torch_twins.FaceTrainNetwork(
        torch_twins.build_backbone(c["backbone"], embedding_size, image_size),
        torch_twins.HEADS[c["head"]](embedding_size, c["num_classes"]),
    )
    with np.load(c["weights"]) as data:
        state = net.state_dict()
        net.load_state_dict(
            {k: torch.from_numpy(data[k]).to(v.dtype) if k in data else v for k, v in state.items()}, strict=True
        )
    net.train()
    optimizer = torch_twins.build_optimizer(net.parameters(), LR, MOMENTUM, WEIGHT_DECAY)
    images, labels = make_batch(c["batch"], image_size, c["num_classes"])
    images, labels = torch.from_numpy(images), torch.from_numpy(labels).long()
    losses = []

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss, _ = net(images, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    return step, losses, lambda: sum(not np.isfinite(v) for v in losses)


def build_mindspore(c):
    """The project's training step (FaceTrainNetwork + TrainStep) on the fixed batch: (step(), losses,
    nonfinite())."""
    import mindspore as ms

    from benchmarks.ms_side import accelerate, load_twin_weights, setup_device
    from src.heads import build_head
    from src.network import build_backbone
    from src.train.lr_schedule import learning_rates
    from src.train.optimizer import build_optimizer
    from src.train.train_network import FaceTrainNetwork
    from src.train.train_step import TrainStep

    kernels = setup_device(c["mode"], c["settings"], c["backbone"])
    embedding_size, image_size = NETWORKS[c["backbone"]]
    net = FaceTrainNetwork(
        accelerate(build_backbone(c["backbone"], embedding_size=embedding_size, image_size=image_size), kernels),
        build_head(c["head"], embedding_size=embedding_size, num_classes=c["num_classes"]),
    )
    load_twin_weights(net, c["weights"], c["backbone"], embedding_size, image_size, prefix="backbone.")
    total = c["warmup"] + c["steps"] + 1
    optimizer = build_optimizer(net.trainable_params(), learning_rates(total, LR), MOMENTUM, WEIGHT_DECAY)
    train_step = TrainStep(net, optimizer)
    train_step.set_train(True)
    images, labels = make_batch(c["batch"], image_size, c["num_classes"])
    images, labels = ms.Tensor(images), ms.Tensor(labels)
    losses, finite = [], []

    def step():
        loss, _, ok = train_step(images, labels)
        losses.append(float(loss.asnumpy()))
        finite.append(bool(ok.asnumpy()))

    return step, losses, lambda: finite.count(False)


def run_timed(build, c):
    """First step timed alone (graph compilation), then ``warmup`` - 1 untimed and ``steps`` timed steps."""
    step, losses, nonfinite = build(c)
    first = common.time_steps(step, 1, 0)[0]
    durations = common.time_steps(step, c["steps"], max(c["warmup"] - 1, 0))
    return dict(
        common.rate_summary(durations, c["batch"]),
        first_step_s=round(first, 2),
        loss_first=f"{losses[0]:.5f}",
        nonfinite_steps=nonfinite(),
    )


BUILDERS = {"torch": build_torch, "mindspore": build_mindspore}


def worker(c):
    common.apply_worker_isa(c)
    if c["job"] == "init":
        return init_weights(c)
    return run_timed(BUILDERS[c["job"]], c)


# --- driver ----------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--backbones", nargs="+", default=["sphere20a", "mobilefacenet"], choices=sorted(NETWORKS))
    parser.add_argument("--heads", nargs="+", default=["cosface"], choices=HEADS)
    parser.add_argument("--modes", nargs="+", default=["GRAPH"], choices=["GRAPH", "PYNATIVE"])
    parser.add_argument("--batch_sizes", nargs="+", type=int, default=[32])
    parser.add_argument("--num_classes", type=int, default=10575, help="classes of the head (CASIA-WebFace: 10,575)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first compiles)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each configuration, order alternating")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads")
    common.torch_isa_argument(parser)
    parser.add_argument(
        "--ms_settings",
        action="append",
        default=None,
        help="MindSpore variant 'name:key=value,...' (keys: threads, jit_level, graph_kernel, "
        "dispatch_threads, cpu_kernels (auto|off, default off), cpu_isa; root=PATH runs it from "
        "another copy of the project; project=true or the name 'project' (the default) uses init_device with the "
        "schema defaults)",
    )
    parser.add_argument("--no_torch", action="store_true", help="MindSpore only")
    parser.add_argument("--explore", action="store_true", help="add the MindSpore setting variants " + str(EXPLORE))
    parser.add_argument("--full", action="store_true", help="every backbone and head, both modes, batch 32 and 64")
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "bench_train.json"))
    args = parser.parse_args(argv)
    if args.full:
        args.backbones, args.heads, args.modes, args.batch_sizes = (
            sorted(NETWORKS),
            list(HEADS),
            ["GRAPH", "PYNATIVE"],
            [32, 64],
        )
    args.variants = [parse_variant(text) for text in (args.ms_settings or ["project:"])]
    if args.explore:
        args.variants += [parse_variant(text) for text in EXPLORE]
    return args


def summarise(group_key, runs):
    """One table row from the runs of one (framework, mode, variant) in a group."""
    ok = [r for r in runs if "error" not in r]
    row = dict(group_key)
    if not ok:
        row["error"] = runs[0]["error"]
        return row
    durations = [d for r in ok for d in r["step_s"]]
    row.update(common.rate_summary(durations, row["batch"]))
    row.update(
        first_step_s=min(r["first_step_s"] for r in ok),
        loss_first=ok[0]["loss_first"],
        nonfinite_steps=sum(r["nonfinite_steps"] for r in ok),
        peak_rss_mib=max(r["peak_rss_mib"] for r in ok),
        onednn_cap=ok[0]["onednn_cap"],
        load=ok[-1]["load_after"],
        runs=[{k: r[k] for k in ("img_s", "load_before", "load_after", "wall_s")} for r in ok],
    )
    return row


def main(argv=None):
    common.setup_logging()
    args = parse_args(argv)
    script = os.path.abspath(__file__)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train_") as workdir:
        for backbone, head, batch in itertools.product(args.backbones, args.heads, args.batch_sizes):
            base = {
                "backbone": backbone,
                "head": head,
                "batch": batch,
                "num_classes": args.num_classes,
                "steps": args.steps,
                "warmup": args.warmup,
                "threads": args.threads,
                "weights": os.path.join(workdir, f"{backbone}_{head}.npz"),
            }
            if not os.path.exists(base["weights"]):
                init = common.run_worker(script, dict(base, job="init"))
                if "error" in init:
                    raise SystemExit(f"{backbone}/{head}: writing the twin weights failed: {init['error']}")
            jobs = [] if args.no_torch else common.torch_jobs("torch", args.torch_isa)
            jobs += [
                ("mindspore", mode, name, settings, root)
                for mode in args.modes
                for name, settings, root in args.variants
            ]
            runs = common.run_rounds(script, base, jobs, args.rounds, f"{backbone} {head} batch {batch}")
            group = [
                summarise(
                    {"backbone": backbone, "head": head, "batch": batch, "framework": f, "mode": m, "variant": n},
                    results,
                )
                for (f, m, n), results in runs.items()
            ]
            torch_rate = max((r.get("img_s") or 0 for r in group if r["framework"] == "torch"), default=None)
            for row in group:
                if torch_rate and row.get("img_s") and row["framework"] == "mindspore":
                    row["ratio"] = round(row["img_s"] / torch_rate, 2)
            rows += group
            print(common.format_table(group, COLUMNS), flush=True)
    common.finish(
        "train",
        args,
        rows,
        COLUMNS,
        lambda row: f"{row['backbone']}/{row['head']}/{row['batch']} {row['framework']} {row['mode']} {row['variant']}",
    )


if __name__ == "__main__":
    if "--worker" in sys.argv:
        common.worker_main(worker)
    else:
        main()
