"""Where a training step spends its time: the operators of MindSpore's step next to the PyTorch twin's.

    python benchmarks/profile_train.py [--backbone sphere20a] [--head cosface] [--batch 32] [--mode GRAPH]

MindSpore is profiled with ``mindspore.Profiler`` (its CPU operator table ``cpu_op_type_info_0.csv``), PyTorch
with ``torch.profiler`` (self CPU time per operator). Both run the benchmark's training step
(benchmarks/bench_train.py) with the same weights and batch, after ``--warmup`` unprofiled steps. The table
lists the top operators by time per step; the JSON keeps every operator.
"""

import argparse
import csv
import glob
import os
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))

from benchmarks import bench_train, common  # noqa: E402
from benchmarks.nets import HEADS, NETWORKS, parse_variant  # noqa: E402


def profile_mindspore(c):
    import mindspore as ms

    step, _, _ = bench_train.build_mindspore(c)
    common.time_steps(step, 0, c["warmup"])
    profiler = ms.Profiler(output_path=c["profile_dir"])
    start = time.perf_counter()
    common.time_steps(step, c["steps"], 0)
    elapsed = time.perf_counter() - start
    profiler.analyse()
    table = glob.glob(os.path.join(c["profile_dir"], "**", "cpu_op_type_info_0.csv"), recursive=True)
    if not table:
        raise RuntimeError(f"mindspore.Profiler wrote no cpu_op_type_info_0.csv under {c['profile_dir']}")
    ops = {}
    with open(table[0], encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ops[row["op_type"]] = float(row["total_compute_time"]) / c["steps"]
    return {"ops_ms": ops, "step_ms": elapsed * 1000.0 / c["steps"]}


def profile_torch(c):
    import torch

    step, _, _ = bench_train.build_torch(c)
    common.time_steps(step, 0, c["warmup"])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        common.time_steps(step, c["steps"], 0)
        elapsed = time.perf_counter() - start
    ops = {}
    for event in prof.key_averages():
        if event.self_cpu_time_total > 0:
            ops[event.key] = event.self_cpu_time_total / 1000.0 / c["steps"]
    return {"ops_ms": ops, "step_ms": elapsed * 1000.0 / c["steps"]}


PROFILERS = {"mindspore": profile_mindspore, "torch": profile_torch}


def top(ops, count):
    total = sum(ops.values())
    ranked = sorted(ops.items(), key=lambda item: -item[1])[:count]
    return [(name, ms, 100.0 * ms / total) for name, ms in ranked], total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--backbone", default="sphere20a", choices=sorted(NETWORKS))
    parser.add_argument("--head", default="cosface", choices=HEADS)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--mode", default="GRAPH", choices=["GRAPH", "PYNATIVE"])
    parser.add_argument("--num_classes", type=int, default=10575)
    parser.add_argument("--steps", type=int, default=2, help="profiled steps")
    parser.add_argument("--warmup", type=int, default=2, help="unprofiled steps first (the first compiles)")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads")
    common.torch_isa_argument(parser, several=False)
    parser.add_argument(
        "--ms_settings",
        default="project:",
        help="MindSpore settings 'name:key=value,...' as in bench_train.py ('project': init_device)",
    )
    parser.add_argument("--top", type=int, default=15, help="operators listed per framework")
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "profile_train.json"))
    args = parser.parse_args(argv)
    common.setup_logging()
    _, settings, _ = parse_variant(args.ms_settings)
    results = {}
    with tempfile.TemporaryDirectory(prefix="profile_train_") as workdir:
        base = {
            "backbone": args.backbone,
            "head": args.head,
            "batch": args.batch,
            "num_classes": args.num_classes,
            "steps": args.steps,
            "warmup": args.warmup,
            "threads": args.threads,
            "mode": args.mode,
            "settings": settings,
            "weights": os.path.join(workdir, "weights.npz"),
            "profile_dir": os.path.join(workdir, "ms"),
        }
        init = common.run_worker(os.path.join(BENCH_DIR, "bench_train.py"), dict(base, job="init"))
        if "error" in init:
            raise SystemExit(f"writing the twin weights failed: {init['error']}")
        for framework in ("torch", "mindspore"):
            config = dict(base, job=framework)
            if framework == "torch":
                config["settings"] = {"torch_isa": args.torch_isa}
            results[framework] = common.run_worker(os.path.abspath(__file__), config)
            if "error" in results[framework]:
                raise SystemExit(f"{framework} profile failed: {results[framework]['error']}")
    rows = []
    ranked = {f: top(results[f]["ops_ms"], args.top) for f in results}
    for i in range(args.top):
        row = {"rank": i + 1}
        for framework, key in (("mindspore", "ms"), ("torch", "pt")):
            entries = ranked[framework][0]
            if i < len(entries):
                row.update(
                    {
                        f"{key}_op": entries[i][0],
                        f"{key}_ms": round(entries[i][1], 1),
                        f"{key}_pct": round(entries[i][2], 1),
                    }
                )
        rows.append(row)
    print(
        f"{args.backbone} + {args.head}, batch {args.batch}, MindSpore {args.mode} ({args.ms_settings}) vs "
        f"PyTorch: ms per step"
    )
    print(
        common.format_table(
            rows,
            [
                ("rank", "#"),
                ("ms_op", "MindSpore op"),
                ("ms_ms", "ms/step"),
                ("ms_pct", "%"),
                ("pt_op", "PyTorch op"),
                ("pt_ms", "ms/step"),
                ("pt_pct", "%"),
            ],
        )
    )
    for framework in ("mindspore", "torch"):
        r = results[framework]
        print(
            f"{framework}: operators {ranked[framework][1]:.0f} ms/step, wall {r['step_ms']:.0f} ms/step "
            f"(profiled), peak RSS {r['peak_rss_mib']} MiB, load {r['load_after']}"
        )
    common.write_json(args.output, {"benchmark": "profile_train", "args": vars(args), "results": results})
    print(f"written {args.output}")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        common.worker_main(lambda c: common.apply_worker_isa(c) or PROFILERS[c["job"]](c))
    else:
        main()
