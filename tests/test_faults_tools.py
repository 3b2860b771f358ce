"""The tools' worker processes (tools/detect_landmarks.py, tools/align_dataset.py, ``ordered_map``) when the tool
itself is killed (see the fault table, docs/faults.md)."""

import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A tool's pool, busy with long tasks: what tools/detect_landmarks.py --workers 2 runs.
TOOL = """
import time
from src.data.parallel import worker_pool
pool = worker_pool(2)
print(*pool.map(time.sleep, [0, 0]), flush=True)
pool.map(time.sleep, [300, 300])
"""


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry))
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_end_with_a_tool_killed_with_kill_9():
    tool = subprocess.Popen([sys.executable, "-c", TOOL], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert tool.stdout.readline().split() == ["None", "None"]  # both workers started and took a task
        time.sleep(0.5)  # ... and are in their long tasks
        workers = [pid for pid in children(tool.pid) if pid != tool.pid]
        assert len(workers) >= 2, workers
        os.kill(tool.pid, signal.SIGKILL)
        tool.wait(timeout=10)
        deadline = time.time() + 10
        while any(alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.1)
        left = [pid for pid in workers if alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"workers {left} outlived their parent"
    finally:
        if tool.poll() is None:
            tool.kill()
