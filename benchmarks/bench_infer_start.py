"""Start-up of a one-shot 1:1 call: ``infer.py A B --ckpt_file MODEL.mindir`` (no config) as a whole process, in
the ways MindSpore offers to spend less on compiling: PYNATIVE (infer.py's default for two photos from a MINDIR: no
detector graph compiled), GRAPH (the P-, R- and O-Net and the model compiled), and GRAPH with MindSpore's compile
cache (``MS_COMPILER_CACHE_ENABLE=1``, ``MS_COMPILER_CACHE_PATH`` a folder of this run, warm after the warm-up).

    python benchmarks/bench_infer_start.py --model m.mindir --images a.jpg b.jpg [--rounds 5] [--output F.json]

Each way runs once to warm up (MTCNN weights, page cache, the compile cache), then ``--rounds`` times in turn
(pynative, graph, graph-cache, pynative, ...); the table gives the median, min and max of the wall seconds and the
median CPU seconds (user + system of the finished process), with the load average before and after.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

COLUMNS = [
    ("way", "way"),
    ("wall_s", "wall s (median)"),
    ("wall_min", "min"),
    ("wall_max", "max"),
    ("cpu_s", "CPU s (median)"),
    ("runs", "runs"),
]


def ways(cache_dir):
    """{name: (extra infer.py arguments, extra environment)}."""
    cache = {"MS_COMPILER_CACHE_ENABLE": "1", "MS_COMPILER_CACHE_PATH": cache_dir}
    return {"pynative": ([], {}), "graph": (["--mode", "GRAPH"], {}), "graph-cache": (["--mode", "GRAPH"], cache)}


def run_once(command, env):
    """(wall seconds, CPU seconds) of one finished run of ``command``; a failed run raises with its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="an exported MINDIR with its sidecar")
    parser.add_argument("--images", nargs=2, required=True, help="the two photos")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", default="bench_results/infer_start.json")
    args = parser.parse_args(argv)
    base = [sys.executable, os.path.join(ROOT, "infer.py"), *args.images, "--ckpt_file", args.model]
    load_before = common.load_average()
    with tempfile.TemporaryDirectory() as cache_dir:
        plan = ways(cache_dir)
        for extra, env in plan.values():
            run_once(base + extra, env)
        times = {name: [] for name in plan}
        for _ in range(args.rounds):
            for name, (extra, env) in plan.items():
                times[name].append(run_once(base + extra, env))
    rows = [
        {
            "way": name,
            "wall_s": statistics.median(wall for wall, _ in runs),
            "wall_min": min(wall for wall, _ in runs),
            "wall_max": max(wall for wall, _ in runs),
            "cpu_s": statistics.median(cpu for _, cpu in runs),
            "runs": len(runs),
        }
        for name, runs in times.items()
    ]
    print(f"load average before {load_before}")
    common.finish("infer_start", args, rows, COLUMNS, lambda row: row["way"])


if __name__ == "__main__":
    main()
