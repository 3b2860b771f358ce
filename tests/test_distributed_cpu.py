"""Data parallel on this machine: 2 CPU workers started by scripts/run_distribute_train_CPU.sh (msrun) end with
identical weights on both ranks, equal to one process with the same global batch (16) and seed up to float32
summation order, and a run resumes across worker counts (1 -> 2 and 2 -> 1) from the global step."""

import os
import shutil
import subprocess

import pytest
from tiny_training import PYTHON, ROOT, digits_subset, load_params, max_difference, write_config

STEPS = 14  # 112 images / global batch 16 = 7 steps an epoch: 2 epochs
# One process sums 16 per-sample gradients, two ranks sum 8 each and average: float32 rounding differs.
TOLERANCE = 1e-5
SINGLE = {
    "global_batch_size": 16,
    "num_threads": 1,
    "max_steps": STEPS,
    "save_interval": 4,
    "keep_checkpoints": 100,
    "clip_grad_norm": 5.0,
}


def final(folder):
    return load_params(os.path.join(folder, f"step_{STEPS:08d}.ckpt"))


def start_single(config, cwd, *extra):
    return subprocess.Popen(
        [PYTHON, os.path.join(ROOT, "train.py"), f"--config_path={config}", *extra],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_two_workers(config, cwd, *extra):
    env = dict(os.environ, PYTHON=PYTHON)
    return subprocess.Popen(
        [
            "bash",
            os.path.join(ROOT, "scripts", "run_distribute_train_CPU.sh"),
            "2",
            config,
            "--save_every_rank=true",
            *extra,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process, output_dir, ranks):
    """Wait; judge by each rank's log (msrun's scheduler may time a worker out at shutdown, see
    /work/shared/docs/mindspore-2.10-on-cpu.md) as well as the exit code."""
    output = process.communicate(timeout=900)[0]
    for rank in range(ranks):
        log = open(os.path.join(output_dir, f"log_rank{rank}.txt")).read()
        assert f"at step {STEPS} of {STEPS};" in log, output[-3000:]
    scheduler = os.path.join(output_dir, "msrun_log", "scheduler.log")
    timed_out = os.path.exists(scheduler) and "timed out node" in open(scheduler).read()
    assert process.returncode == 0 or timed_out, output[-3000:]


def seed_checkpoint(source, output_dir, step=8):
    """A new run folder holding ``source``'s checkpoint of ``step`` (mid-epoch 2) to resume from."""
    os.makedirs(os.path.join(output_dir, "checkpoints"))
    name = f"step_{step:08d}.ckpt"
    shutil.copy(os.path.join(source, name), os.path.join(output_dir, "checkpoints", name))


@pytest.mark.slow
def test_two_cpu_workers_match_one_process_and_resume_across_worker_counts(tmp_path):
    data = digits_subset(str(tmp_path / "digits"))
    config = write_config(str(tmp_path / "tiny.yaml"), data, str(tmp_path / "unused"), **SINGLE)
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    runs = [
        (start_single(config, tmp_path, f"--output_dir={one}"), one, 1),
        (start_two_workers(config, tmp_path, f"--output_dir={two}"), two, 2),
    ]
    for process, output_dir, ranks in runs:
        finish(process, output_dir, ranks)

    rank0, rank1 = final(os.path.join(two, "checkpoints")), final(os.path.join(two, "checkpoints_rank1"))
    assert max_difference(rank0, rank1) == 0.0
    reference = final(os.path.join(one, "checkpoints"))
    difference = max_difference(rank0, reference)
    assert difference < TOLERANCE
    print(f"2 workers vs 1 process after {STEPS} steps: max |difference| {difference:.3g}")

    one_to_two, two_to_one = str(tmp_path / "one_to_two"), str(tmp_path / "two_to_one")
    seed_checkpoint(os.path.join(one, "checkpoints"), one_to_two)
    seed_checkpoint(os.path.join(two, "checkpoints"), two_to_one)
    runs = [
        (start_two_workers(config, tmp_path, f"--output_dir={one_to_two}", "--resume"), one_to_two, 2),
        (start_single(config, tmp_path, f"--output_dir={two_to_one}", "--resume"), two_to_one, 1),
    ]
    for process, output_dir, ranks in runs:
        finish(process, output_dir, ranks)
    assert "saved on 1 worker(s), now 2" in open(os.path.join(one_to_two, "log_rank1.txt")).read()
    assert "saved on 2 worker(s), now 1" in open(os.path.join(two_to_one, "log_rank0.txt")).read()
    resumed_two = final(os.path.join(one_to_two, "checkpoints"))
    assert max_difference(resumed_two, final(os.path.join(one_to_two, "checkpoints_rank1"))) == 0.0
    differences = {
        "1 -> 2 workers vs 2 workers": max_difference(resumed_two, rank0),
        "2 -> 1 worker vs 1 process": max_difference(final(os.path.join(two_to_one, "checkpoints")), reference),
    }
    print("resumed across worker counts, max |difference|:", differences)
    assert all(value < TOLERANCE for value in differences.values())
    assert int(resumed_two["global_step"][0]) == STEPS and int(resumed_two["head.margin.iteration"]) == STEPS
