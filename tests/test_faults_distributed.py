"""A data-parallel worker killed mid-run (see the README table "When things go wrong"): the CPU launcher ends
with a message naming the worker, how it ended and the checkpoint to resume from, and rank 0's log ends with it."""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tiny_training import PYTHON, ROOT, digits_subset, write_config

from tools.distributed_report import PID_LINE


def worker_pid(log_path):
    """The pid of the worker whose msrun console is ``log_path`` (its first MindSpore log line names it)."""
    for line in Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines():
        match = PID_LINE.match(line)
        if match:
            return int(match.group(1))
    return None


@pytest.mark.slow
def test_killed_worker_is_named_by_the_launcher(tmp_path):
    data = digits_subset(str(tmp_path / "digits"))
    out = tmp_path / "run"
    config = write_config(str(tmp_path / "tiny.yaml"), data, str(out), global_batch_size=16, num_threads=1,
                          max_steps=100000, save_interval=10, log_interval=5)
    launcher = subprocess.Popen(["bash", os.path.join(ROOT, "scripts", "run_distribute_train_CPU.sh"), "2", config],
                                cwd=tmp_path, env=dict(os.environ, PYTHON=PYTHON), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        end = time.time() + 600
        while " step 20/" not in (out / "log_rank1.txt").read_text() if (out / "log_rank1.txt").exists() else True:
            assert time.time() < end and launcher.poll() is None, launcher.communicate()[0][-3000:]
            time.sleep(0.5)
        pid = worker_pid(out / "msrun_log" / "worker_1.log")
        assert config in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")  # our worker, nobody else's
        os.kill(pid, signal.SIGKILL)
        output = launcher.communicate(timeout=600)[0]
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0
    assert f"distributed run failed: worker 1 (pid {pid}) ended by SIGKILL: killed (kill -9, or the kernel's " \
           f"out-of-memory killer" in output
    assert "continue with the same command and --resume" in output
    log = (out / "log_rank0.txt").read_text().splitlines()
    assert f"ERROR launcher: worker 1 (pid {pid}) ended by SIGKILL" in log[-3]
