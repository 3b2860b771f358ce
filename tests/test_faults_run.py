"""A training run meets the outside world (subprocesses of train.py on a tiny network; see the fault table,
docs/faults.md): stop signals, a second run into the same folder, a stale lock, user errors without traceback."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tiny_training import PYTHON, ROOT, digits_subset, write_config

from src.train.run_lock import LOCK_NAME, RunLock, RunLockError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return digits_subset(str(tmp_path_factory.mktemp("digits")))


def train_command(data, output_dir, *extra, **overrides):
    config = write_config(os.path.join(str(output_dir) + "_config.yaml"), data, str(output_dir), **overrides)
    return [PYTHON, os.path.join(ROOT, "train.py"), f"--config_path={config}", *extra]


def start_train(data, output_dir, *extra, **overrides):
    return subprocess.Popen(
        train_command(data, output_dir, *extra, **overrides),
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_for(path, text, process, timeout=300):
    """Wait until the file ``path`` contains ``text`` (the process still running)."""
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path) and text in Path(path).read_text(encoding="utf-8"):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {path} after {timeout} s")


# MindSpore 2.10 installs, at every graph run, a C++ SIGINT handler that turns the signal into a SIGTERM of the
# process: a Ctrl-C that lands during a step ends as SIGTERM (143), one between steps as SIGINT (130).
@pytest.mark.parametrize(
    "signum, statuses",
    [
        (signal.SIGTERM, (143,)),
        pytest.param(signal.SIGINT, (130, 143), marks=pytest.mark.slow),
        pytest.param(signal.SIGHUP, (129,), marks=pytest.mark.slow),
    ],
)
def test_stop_signal_saves_and_says_how_to_resume(data, tmp_path, signum, statuses):
    process = start_train(data, tmp_path, max_steps=100000, save_interval=100000)
    log = str(tmp_path / "log_rank0.txt")
    wait_for(log, " step 3/", process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode in statuses, stderr
    text = Path(log).read_text(encoding="utf-8")
    step = int(text.split("interrupted at step ")[1].split(",")[0])
    assert f"interrupted at step {step}, resume with --resume" in stderr and "Traceback" not in stderr
    assert os.path.exists(tmp_path / "checkpoints" / f"step_{step:08d}.ckpt")
    assert not os.path.exists(tmp_path / LOCK_NAME)


def test_second_run_into_the_same_folder_is_refused(data, tmp_path):
    first = start_train(data, tmp_path, max_steps=100000, save_interval=100000)
    try:
        wait_for(str(tmp_path / LOCK_NAME), "pid", first)
        second = subprocess.run(
            train_command(data, tmp_path / "again", f"--output_dir={tmp_path}", max_steps=4),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert second.returncode == 1
        assert f"another training run is writing to this output_dir (pid {first.pid} on" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert json.loads((tmp_path / "config.json").read_text())["max_steps"] == 100000  # the first run's, untouched


def test_stale_lock_is_taken_over_with_a_warning(tmp_path):
    gone = subprocess.Popen([PYTHON, "-c", "pass"])
    gone.wait()
    (tmp_path / LOCK_NAME).write_text(
        json.dumps({"pid": gone.pid, "host": os.uname().nodename, "started": "yesterday"}), encoding="utf-8"
    )
    lock = RunLock(str(tmp_path))
    warning = lock.acquire()
    assert f"taking over the lock of a run that ended without releasing it (pid {gone.pid}" in warning
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    with pytest.raises(RunLockError, match="another training run is writing to this output_dir"):
        RunLock(str(tmp_path)).acquire()
    lock.release()
    assert not os.path.exists(tmp_path / LOCK_NAME)


def test_lock_of_another_host_is_refused_naming_it(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "node-17"}), encoding="utf-8")
    with pytest.raises(RunLockError, match="in use by a run on another machine .*node-17.*delete the lock file"):
        RunLock(str(tmp_path)).acquire()


@pytest.mark.slow
def test_image_folder_gone_mid_run_saves_and_names_it(tmp_path):
    """The training images' folder is moved away mid-run (as a network disk that unmounts): the run writes the
    checkpoint of the last step done and stops with the folder named, exit 1, no pipeline stack."""
    import shutil

    data = digits_subset(str(tmp_path / "digits"))
    out = tmp_path / "run"
    process = start_train(data, out, max_steps=100000, save_interval=100000)
    wait_for(str(out / "log_rank0.txt"), " step 3/", process)
    shutil.move(data["train_root"], str(tmp_path / "unmounted"))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    assert stderr.startswith("error: the folder ") and "is gone (a network disk unmounted" in stderr
    assert "Traceback" not in stderr and "Dataset Pipeline Error" not in stderr
    # Epoch-end checkpoints may come before it (how far the run got depends on the machine); the newest is the
    # step the run last logged (log_interval 1).
    saved = sorted(os.listdir(out / "checkpoints"))
    last_logged = max(int(m) for m in re.findall(r" step (\d+)/", (out / "log_rank0.txt").read_text()))
    assert saved and saved[-1] == f"step_{last_logged:08d}.ckpt", (saved, last_logged)
