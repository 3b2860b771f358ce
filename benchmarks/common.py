"""What every benchmark shares: one configuration per subprocess, timing statistics, peak RSS, machine load,
the Markdown table and the JSON file.

A driver never imports a framework: it starts ``<script> --worker '<json>'`` for each configuration, so the
peak RSS of each configuration is its own (``ru_maxrss`` of that process) and per-process settings (the
MindSpore thread count, the execution mode) are fresh. The worker prints one ``RESULT {json}`` line.
"""

import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
RESULT_MARK = "RESULT "
LOG = logging.getLogger("facerec.bench")


def load_average():
    """os.getloadavg() (1, 5, 15 minutes), rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def peak_rss_mib(who=resource.RUSAGE_SELF):
    """Peak resident set size of this process (``RUSAGE_CHILDREN``: of its largest finished child) in MiB (Linux
    reports ru_maxrss in KiB)."""
    return round(resource.getrusage(who).ru_maxrss / 1024.0, 1)


def machine():
    """What the numbers were measured on."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def time_steps(step, steps, warmup):
    """Run ``step()`` ``warmup`` times untimed, then ``steps`` times; return the timed durations in seconds.
    ``step`` must block until its result is computed."""
    for _ in range(warmup):
        step()
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        durations.append(time.perf_counter() - start)
    return durations


def rate_summary(durations, batch_size):
    """images/s: the median step gives ``img_s``; the slowest / fastest step give ``min`` / ``max``."""
    return {
        "img_s": round(batch_size / statistics.median(durations), 2),
        "img_s_min": round(batch_size / max(durations), 2),
        "img_s_max": round(batch_size / min(durations), 2),
        "step_s": [round(d, 4) for d in durations],
    }


def onednn_cap():
    """The oneDNN instruction set cap this process ran with (``ONEDNN_MAX_CPU_ISA``), "none" for oneDNN's own."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "none"


def torch_isa_argument(parser, several=True):
    """The ``--torch_isa`` option: PyTorch's oneDNN cap(s), as the project's cpu_isa values (``several``: a PyTorch
    run per cap, see ``torch_jobs``)."""
    from src.model_utils.cpu_isa import CHOICES

    parser.add_argument(
        "--torch_isa",
        nargs="+" if several else None,
        choices=CHOICES,
        default=["native"] if several else "native",
        help="PyTorch's oneDNN instruction set cap, a cpu_isa value (default native: PyTorch's own choice, its "
        "fastest on the AVX-512 CPU of docs/performance.md; auto: the project's cap)"
        + ("; several: one PyTorch run each, the ratios against the fastest" if several else "")
        + ". ONEDNN_MAX_CPU_ISA in the environment overrides every run's choice",
    )


def torch_jobs(runtime, isas):
    """One PyTorch job (runtime, mode, variant, settings, root) per oneDNN cap of ``isas``."""
    return [(runtime, "-", f"torch_isa={isa}", {"torch_isa": isa}, None) for isa in isas]


def apply_worker_isa(config):
    """A worker's oneDNN cap, before its first operator: its ``settings["torch_isa"]`` for a PyTorch job
    (PyTorch's oneDNN reads ONEDNN_MAX_CPU_ISA too), the project's ``auto`` for the job writing the initial
    weights; MindSpore jobs set theirs as the project does (benchmarks/ms_side.py)."""
    from src.model_utils.cpu_isa import apply_cpu_isa

    if config["job"] in ("torch", "pytorch"):
        apply_cpu_isa(config["settings"]["torch_isa"])
    elif config["job"] == "init":
        apply_cpu_isa("auto")


def worker_main(run, argv=None):
    """Entry of a worker process: ``--worker '<json>'`` -> ``run(config)`` -> one ``RESULT`` line with the
    rates, peak RSS (this process's, unless ``run`` measured it itself), oneDNN cap and load added."""
    argv = sys.argv[1:] if argv is None else argv
    config = json.loads(argv[argv.index("--worker") + 1])
    load_before = load_average()
    result = run(config)
    result.setdefault("peak_rss_mib", peak_rss_mib())
    result.setdefault("onednn_cap", onednn_cap())
    result.update(load_before=load_before, load_after=load_average())
    print(RESULT_MARK + json.dumps(result), flush=True)


def run_worker(script, config, timeout=3600, root=None):
    """Run one configuration in a fresh ``python script --worker`` process; return its result dict, or
    ``{"error": ...}`` with the tail of its output when it failed. With ``root`` (another copy of the project)
    the same script is run from that copy, with that copy's ``src``."""
    if root:
        script = os.path.join(os.path.abspath(root), os.path.relpath(script, ROOT))
    root = os.path.abspath(root) if root else ROOT
    command = [sys.executable, script, "--worker", json.dumps(config)]
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.time()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=root, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK) :])
            result["wall_s"] = round(time.time() - start, 1)
            return result
    tail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-5:]
    return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}


def run_rounds(script, base, jobs, rounds, label, extra=None):
    """Every job (runtime, mode, variant, settings, root) ``rounds`` times, each in its own worker process, the
    order reversed on odd rounds so all jobs see the same machine load. ``extra(job)`` gives keys added to the
    worker's config and to its result. -> {(runtime, mode, variant): [results]}."""
    runs = {job[:3]: [] for job in jobs}
    for round_index in range(rounds):
        for job in jobs if round_index % 2 == 0 else jobs[::-1]:
            runtime, mode, variant, settings, root = job
            logging.info("%s: %s %s %s (round %d)", label, runtime, mode, variant, round_index + 1)
            keys = extra(job) if extra else {}
            result = run_worker(script, dict(base, job=runtime, mode=mode, settings=settings, **keys), root=root)
            if "error" in result:
                logging.warning("failed: %s", result["error"])
            runs[job[:3]].append(dict(result, **keys))
    return runs


def finish(name, args, rows, columns, describe):
    """Print the whole table and a FAILED line per failed row (``describe(row)`` names it), write ``args.output``
    (benchmark name, arguments, rows, load, machine)."""
    print("\n" + format_table(rows, columns))
    for row in rows:
        if "error" in row:
            print(f"FAILED {describe(row)}: {row['error']}")
    write_json(args.output, {"benchmark": name, "args": vars(args), "load_at_end": load_average(), "rows": rows})
    print(f"\nwritten {args.output}; load average at end {load_average()}")


def format_table(rows, columns):
    """Markdown table of ``rows`` (dicts) with ``columns`` [(key, title)]; missing values print as '-'."""

    def cell(row, key):
        value = row.get(key)
        if value is None:
            return "-"
        if isinstance(value, float):
            if value != 0 and abs(value) < 0.01:
                return f"{value:.1e}"
            return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"
        if isinstance(value, (list, tuple)):
            return "/".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in value)
        return str(value)

    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row, key) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path, payload):
    """Write ``payload`` (with the machine description) as indented JSON, creating the folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(dict(payload, machine=machine()), f, indent=2)
    return path


def setup_logging():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
