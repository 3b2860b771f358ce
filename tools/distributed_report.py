"""Why a data-parallel run ended: read by the msrun launchers (scripts/common.sh) when msrun fails.

    python tools/distributed_report.py OUTPUT_DIR MSRUN_CONSOLE_LOG

MindSpore 2.10 gives the surviving workers no reason when a peer disappears (rank 0's log just stops; msrun
kills the others). This reads msrun's console (worker pid -> exit code), each worker's console
(``msrun_log/worker_<r>.log``: its pid, an ``error:`` line of train.py), the scheduler's timed-out nodes and each
rank's log (the last step), then prints one line per worker, the newest checkpoint and how to continue, and
appends the same to ``log_rank0.txt`` so that rank 0's log ends with the reason.
"""

import glob
import os
import re
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # Run as a script: make `src` importable.
    sys.path.insert(0, ROOT)
from src.model_utils.cli import run_main
from src.train.checkpoint import list_checkpoints

EXIT_LINE = re.compile(r"Worker process (\d+) exit with exception\. Error code: (-?\d+)")
PID_LINE = re.compile(r"^\[\w+\] \w+\((\d+),")
TIMED_OUT = re.compile(r"The node: (\d+) is timed out")
STEP_LINE = re.compile(r" step (\d+)/(\d+) ")
SIGNAL_CAUSES = {
    signal.SIGKILL: "killed (kill -9, or the kernel's out-of-memory killer: see dmesg)",
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated (SIGTERM)",
    signal.SIGBUS: "crashed (bus error)",
}


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def describe_exit(code):
    if code < 0:
        signum = -code
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else f"signal {signum}"
        return f"ended by {name}: {SIGNAL_CAUSES.get(signum, 'killed by a signal')}"
    return f"exited with status {code}"


def worker_lines(output_dir, console):
    """One text per worker rank that did not end cleanly."""
    exits = {int(pid): int(code) for pid, code in EXIT_LINE.findall(console)}
    timed_out = {int(rank) for rank in TIMED_OUT.findall(read(os.path.join(output_dir, "msrun_log", "scheduler.log")))}
    lines = []
    for path in sorted(glob.glob(os.path.join(output_dir, "msrun_log", "worker_*.log"))):
        rank = int(re.search(r"worker_(\d+)\.log$", path).group(1))
        text = read(path)
        pid = next((int(m.group(1)) for m in map(PID_LINE.match, text.splitlines()) if m), None)
        steps = STEP_LINE.findall(read(os.path.join(output_dir, f"log_rank{rank}.txt")))
        where = f"last logged step {steps[-1][0]} of {steps[-1][1]}" if steps else "no step logged"
        errors = [line[len("error: ") :] for line in text.splitlines() if line.startswith("error: ")]
        if errors:
            lines.append(f"worker {rank} (pid {pid}) stopped: {errors[-1]}; {where}")
        elif pid in exits:
            lines.append(f"worker {rank} (pid {pid}) {describe_exit(exits[pid])}; {where}")
        elif rank in timed_out:
            finished = "finished " in read(os.path.join(output_dir, f"log_rank{rank}.txt"))
            lines.append(
                f"worker {rank} (pid {pid}) "
                + (
                    "finished its steps, then timed out at shutdown (MindSpore 2.10's scheduler; the run is complete)"
                    if finished
                    else f"stopped answering the scheduler; {where}"
                )
            )
    return lines


def report(output_dir, console_path):
    """The lines explaining the end of the run in ``output_dir``."""
    lines = worker_lines(output_dir, read(console_path))
    if not lines:
        lines = [f"msrun failed before or without a worker error: see {os.path.join(output_dir, 'msrun_log')}"]
    else:
        lines.append("msrun then stopped the other workers (a data-parallel step needs every worker)")
    checkpoints = list_checkpoints(os.path.join(output_dir, "checkpoints"))
    lines.append(
        f"newest checkpoint: {checkpoints[-1]}; continue with the same command and --resume"
        if checkpoints
        else "no checkpoint was written; start again"
    )
    return lines


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    output_dir, console = args
    lines = report(output_dir, console)
    stamp = time.strftime("%H:%M:%S")
    for line in lines:
        print(f"distributed run failed: {line}", file=sys.stderr)
    with open(os.path.join(output_dir, "log_rank0.txt"), "a", encoding="utf-8") as f:
        f.writelines(f"{stamp} ERROR launcher: {line}\n" for line in lines)
    return 1


if __name__ == "__main__":
    sys.exit(run_main(main))
