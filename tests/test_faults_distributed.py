"""A data-parallel worker killed mid-run (see the fault table, docs/faults.md): the CPU launcher ends
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
    config = write_config(
        str(tmp_path / "tiny.yaml"),
        data,
        str(out),
        global_batch_size=16,
        num_threads=1,
        max_steps=100000,
        save_interval=10,
        log_interval=5,
    )
    launcher = subprocess.Popen(
        ["bash", os.path.join(ROOT, "scripts", "run_distribute_train_CPU.sh"), "2", config],
        cwd=tmp_path,
        env=dict(os.environ, PYTHON=PYTHON),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
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
    assert (
        f"distributed run failed: worker 1 (pid {pid}) ended by SIGKILL: killed (kill -9, or the kernel's "
        f"out-of-memory killer" in output
    )
    assert "continue with the same command and --resume" in output
    log = (out / "log_rank0.txt").read_text().splitlines()
    assert f"ERROR launcher: worker 1 (pid {pid}) ended by SIGKILL" in log[-3]


def test_report_names_a_worker_that_stopped_on_an_error(tmp_path):
    """Fast: the report read from logs in the formats msrun and train.py write (a worker whose own disk is full
    stops with train.py's one-line error; msrun reports its exit code and stops the others)."""
    from tools.distributed_report import report

    logs = tmp_path / "msrun_log"
    logs.mkdir()
    (logs / "worker_0.log").write_text("[WARNING] DEVICE(4100,7f,python):2026-12-01 ... sync start!\n")
    (logs / "worker_1.log").write_text(
        "[WARNING] DEVICE(4102,7f,python):2026-12-01 ... sync start!\n"
        "error: could not write checkpoint run/checkpoints_rank1/step_00000040.ckpt: [Errno 28] No space left on "
        "device; the checkpoints written before are intact\n"
    )
    (tmp_path / "log_rank1.txt").write_text("12:00:01 INFO epoch 6 step 40/100 loss 0.3 acc 0.8 lr 0.05 ...\n")
    console = tmp_path / "msrun_console.log"
    console.write_text("[ERROR] ME(4000:1,MainProcess):... Worker process 4102 exit with exception. Error code: 1.\n")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step_00000035.ckpt").write_bytes(b"")
    lines = report(str(tmp_path), str(console))
    assert lines[0] == (
        "worker 1 (pid 4102) stopped: could not write checkpoint run/checkpoints_rank1/step_00000040.ckpt: [Errno 28] "
        "No space left on device; the checkpoints written before are intact; last logged step 40 of 100"
    )
    assert lines[-1].startswith(f"newest checkpoint: {tmp_path / 'checkpoints' / 'step_00000035.ckpt'}")
    (logs / "worker_1.log").write_text("[WARNING] DEVICE(4102,7f,python):2026-12-01 ... sync start!\n")
    assert report(str(tmp_path), str(console))[0] == (
        "worker 1 (pid 4102) exited with status 1; last logged step 40 of 100"
    )
