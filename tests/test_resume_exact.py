"""Exact resume: a run killed with SIGKILL mid-epoch and resumed with --resume ends with the same weights, head
state, optimizer state and bookkeeping as an uninterrupted run, bit for bit (CPU GRAPH mode, one operator
thread: with two threads MindSpore's PReLU weight gradient is a thread-parallel reduction whose order varies,
so even two uninterrupted runs differ by ~1e-7)."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest
from tiny_training import PYTHON, ROOT, digits_subset, digits_targets, load_params, max_difference, tiny_args

from src.train.checkpoint import list_checkpoints, read_checkpoint
from src.train.run_state import RunState

STEPS, SAVE_EVERY, EPOCH_STEPS = 150, 5, 14  # 112 images / batch 8 = 14 steps an epoch


def command(data, output_dir, *extra):
    args = tiny_args(
        data,
        str(output_dir),
        num_threads=1,
        max_steps=STEPS,
        save_interval=SAVE_EVERY,
        keep_checkpoints=100,
        val_targets=digits_targets(data),
        eval_interval=25,
        clip_grad_norm=5.0,
    )
    return [PYTHON, os.path.join(ROOT, "train.py"), "--config_path="] + args + list(extra)


def steps_of(folder):
    return [int(os.path.basename(p)[5:13]) for p in list_checkpoints(folder)]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    data = digits_subset(str(tmp_path / "digits"))
    reference_dir, run_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    reference = subprocess.Popen(
        command(data, reference_dir), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    killed = subprocess.Popen(
        command(data, run_dir), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    folder = str(run_dir / "checkpoints")
    deadline = time.time() + 300
    while not (os.path.isdir(folder) and len(steps_of(folder)) >= 8) and killed.poll() is None:
        assert time.time() < deadline, "the run wrote no checkpoints in 300 s"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    assert reference.wait() == 0

    written = steps_of(folder)
    assert written[-1] < STEPS, "the run finished before it was killed"
    log = open(run_dir / "log_rank0.txt").read()
    last_logged = max(
        int(line.split(" step ")[1].split("/")[0])
        for line in log.splitlines()
        if " step " in line and "/" in line.split(" step ")[1]
    )
    assert last_logged - written[-1] <= SAVE_EVERY  # at most one checkpoint interval of work is lost
    # Damage the newest checkpoints until the newest intact one is mid-epoch: resume must skip the damaged ones.
    damaged = []
    for step in reversed(written):
        if damaged and step % EPOCH_STEPS:
            resume_step = step
            break
        path = os.path.join(folder, f"step_{step:08d}.ckpt")
        os.chmod(path, 0o600)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        damaged.append(step)

    resumed = subprocess.run(command(data, run_dir, "--resume"), cwd=tmp_path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    log = open(run_dir / "log_rank0.txt").read()
    assert f"step_{damaged[0]:08d}.ckpt: truncated or damaged checkpoint" in log
    assert f"step_{resume_step:08d}.ckpt: step {resume_step}, epoch {resume_step // EPOCH_STEPS + 1}" in log

    final, expected = (
        os.path.join(folder, f"step_{STEPS:08d}.ckpt"),
        str(reference_dir / "checkpoints" / f"step_{STEPS:08d}.ckpt"),
    )
    assert max_difference(load_params(final), load_params(expected)) == 0.0
    params = load_params(final)
    assert int(params["head.margin.iteration"]) == STEPS and int(params["global_step"][0]) == STEPS
    assert RunState.from_entries(read_checkpoint(final)) == RunState.from_entries(read_checkpoint(expected))
    best, best_expected = (
        load_params(os.path.join(d, "best.ckpt")) for d in (folder, str(reference_dir / "checkpoints"))
    )
    assert max_difference(best, best_expected) == 0.0
    assert np.isfinite(params["head.centres.weight"]).all()
