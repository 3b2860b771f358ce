"""The launch scripts: usage lines on wrong arguments, a real standalone CPU run started from another working
directory, and the GPU / Ascend launch commands checked with stand-ins for the interpreter, msrun and mpirun
(no accelerator here)."""

import json
import os
import stat
import subprocess

import pytest
from tiny_training import PYTHON, ROOT, digits_subset, write_config

from src.train.checkpoint import list_checkpoints

SCRIPTS = os.path.join(ROOT, "scripts")


def launch(script, *args, cwd=None, env=None):
    return subprocess.run(
        ["bash", os.path.join(SCRIPTS, script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": PYTHON, **(env or {})},
        timeout=600,
    )


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("run_train_standalone_CPU.sh", [], "DEVICE_ID must be a number"),
        ("run_train_standalone_GPU.sh", ["x"], "DEVICE_ID must be a number"),
        ("run_train_standalone_Ascend.sh", ["0", "missing.yaml"], "config file not found: missing.yaml"),
        ("run_distribute_train.sh", ["eight"], "must be a device count or a rank table file"),
        ("run_distribute_train_GPU.sh", ["2", "0"], "VISIBLE_DEVICES lists 1 GPUs, DEVICE_NUM is 2"),
        ("run_distribute_train_GPU.sh", ["2"], "VISIBLE_DEVICES must be like 0,1,2,3"),
        ("run_distribute_train_CPU.sh", ["0"], "WORKERS must be a positive number"),
    ],
)
def test_wrong_arguments_print_the_usage_line(script, args, message, tmp_path):
    result = launch(script, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and f"usage: bash scripts/{script}" in result.stderr


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("launch")
    data = digits_subset(str(folder / "digits"))
    return write_config(str(folder / "tiny.yaml"), data, "run", max_steps=6, save_interval=3)


def test_standalone_cpu_run_from_another_directory(config, tmp_path):
    """Relative paths (output_dir: run) are the caller's; the script finds train.py itself."""
    result = launch("run_train_standalone_CPU.sh", 0, config, "--num_threads=1", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = tmp_path / "run"
    assert "finished 6 steps in" in open(out / "log_rank0.txt").read()
    assert "finished 6 steps in" in open(out / "console_rank0.log").read()
    assert [os.path.basename(p) for p in list_checkpoints(str(out / "checkpoints"))] == [
        "step_00000003.ckpt",
        "step_00000006.ckpt",
    ]


def stand_in(path, body):
    with open(path, "w", encoding="utf-8") as f:
        f.write("#!/bin/bash\n" + body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def recorder(tmp_path):
    """A PYTHON that records train.py launches (arguments + launcher variables) and runs anything else."""
    record = tmp_path / "launches.txt"
    python = stand_in(
        tmp_path / "python",
        f"""
if [[ "$1" == *train.py ]]; then
    echo "RANK_ID=$RANK_ID DEVICE_ID=$DEVICE_ID RANK_SIZE=$RANK_SIZE RANK_TABLE_FILE=$RANK_TABLE_FILE \
CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES ARGS=$*" >> {record}
    exit 0
fi
exec {PYTHON} "$@"
""",
    )
    return python, record


def test_ascend_rank_table_launch(config, tmp_path, recorder):
    python, record = recorder
    table = tmp_path / "hccl_2p.json"
    table.write_text(
        json.dumps(
            {
                "server_count": "1",
                "server_list": [
                    {
                        "server_id": "10.0.0.1",
                        "device": [
                            {"device_id": "0", "device_ip": "192.1.1.1", "rank_id": "0"},
                            {"device_id": "1", "device_ip": "192.1.1.2", "rank_id": "1"},
                        ],
                    }
                ],
            }
        )
    )
    result = launch("run_distribute_train.sh", table, config, "--lr=0.01", cwd=tmp_path, env={"PYTHON": python})
    assert result.returncode == 0, result.stderr
    lines = sorted(record.read_text().splitlines())
    assert len(lines) == 2
    for rank, line in enumerate(lines):
        assert line.startswith(f"RANK_ID={rank} DEVICE_ID={rank} RANK_SIZE=2 RANK_TABLE_FILE={table} ")
        assert line.endswith(f"train.py --config_path={config} --lr=0.01 --device_target=Ascend")
    assert os.path.isfile(tmp_path / "run" / "rank_table_log" / "worker_1.log")


@pytest.mark.parametrize(
    "script, args, target",
    [
        ("run_distribute_train.sh", ["8"], "Ascend"),
        ("run_distribute_train_GPU.sh", ["4", "0,1,2,3"], "GPU"),
    ],
)
def test_msrun_launch_commands(config, tmp_path, recorder, script, args, target):
    python, _ = recorder
    record = tmp_path / "msrun.txt"
    msrun = stand_in(tmp_path / "msrun", f'echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES $*" > {record}\n')
    result = launch(
        script,
        *args,
        config,
        "--amp_level=O2",
        cwd=tmp_path,
        env={"PYTHON": python, "MSRUN": msrun, "MASTER_PORT": "8129"},
    )
    assert result.returncode == 0, result.stderr
    workers = args[0]
    line = record.read_text().strip()
    assert f"--worker_num={workers} --local_worker_num={workers} --master_addr=127.0.0.1 --master_port=8129" in line
    assert f"--log_dir={tmp_path / 'run' / 'msrun_log'} --join=True" in line
    assert line.endswith(f"train.py --config_path={config} --amp_level=O2 --device_target={target}")
    if target == "GPU":
        assert line.startswith("CUDA_VISIBLE_DEVICES=0,1,2,3 ")


def test_gpu_mpirun_fallback(config, tmp_path, recorder):
    python, _ = recorder
    record = tmp_path / "mpirun.txt"
    stand_in(tmp_path / "mpirun", f'echo "$*" > {record}\n')
    result = launch(
        "run_distribute_train_GPU.sh",
        2,
        "0,1",
        config,
        cwd=tmp_path,
        env={"PYTHON": python, "LAUNCHER": "mpirun", "PATH": f"{tmp_path}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stderr
    line = record.read_text().strip()
    assert line.startswith(f"-n 2 --allow-run-as-root --output-filename {tmp_path / 'run' / 'mpirun_log'} ")
    assert line.endswith(f"{python} {ROOT}/train.py --config_path={config} --device_target=GPU")
