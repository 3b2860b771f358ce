"""User errors at the command line of every entry point (see the fault table, docs/faults.md): the
message alone, exit status 2 for a usage error and 1 for a data error, the traceback kept for --debug and the
log file; Ctrl-C in a tool; a device MindSpore was not built for; an output folder that cannot be written."""

import logging
import os
import subprocess
import sys

import pytest
from tiny_training import PYTHON, ROOT

from src.model_utils.cli import run_main
from src.model_utils.config import ConfigError


def run_tool(*args):
    return subprocess.run([PYTHON, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_data_error_is_one_line_without_traceback(tmp_path):
    result = run_tool("tools/check_dataset.py", "--list", str(tmp_path / "absent.txt"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: training list not found: {tmp_path / 'absent.txt'} (list_format=plain)"


def test_usage_error_exits_2_and_debug_keeps_the_traceback():
    result = run_tool("train.py", "--device_target=CPU", "--lr=fast")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: config key 'lr': expected float, got str 'fast'"
    debug = run_tool("train.py", "--device_target=CPU", "--lr=fast", "--debug")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "ConfigError: config key 'lr'" in debug.stderr


def test_traceback_goes_to_the_log_file(tmp_path, monkeypatch, restore_logging_handlers):
    log_path = tmp_path / "log_rank0.txt"
    handler = logging.FileHandler(log_path)
    logging.getLogger().addHandler(handler)
    restore_logging_handlers.append(handler)

    def main():
        raise ConfigError("config key 'x': bad")

    monkeypatch.setattr(sys, "argv", ["prog"])
    assert run_main(main) == 2
    text = log_path.read_text()
    assert "config key 'x': bad" in text and "Traceback (most recent call last)" in text


def test_a_bug_keeps_its_traceback(monkeypatch):
    def main():
        return {}["missing"]

    monkeypatch.setattr(sys, "argv", ["prog"])
    with pytest.raises(KeyError):
        run_main(main)


def test_ctrl_c_in_a_tool_exits_130_quietly(monkeypatch, capsys):
    def main():
        raise KeyboardInterrupt

    monkeypatch.setattr(sys, "argv", ["prog"])
    assert run_main(main) == 130
    assert capsys.readouterr().err == "interrupted (Ctrl-C)\n"


def test_device_missing_from_this_mindspore_build():
    result = run_tool("eval.py", "--device_target=GPU", "--config_path=")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "error: config key 'device_target': GPU is not available in this MindSpore installation (it supports "
        "['CPU'])" in result.stderr
    )


def test_output_folder_that_cannot_be_written(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/facerec_output"  # root may write anywhere else
    else:
        os.chmod(tmp_path, 0o500)
        target = str(tmp_path / "out")
    result = run_tool("train.py", "--device_target=CPU", f"--output_dir={target}", "--train_list=x.txt")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{target}" in result.stderr.splitlines()[-1]


@pytest.fixture
def restore_logging_handlers():
    handlers = []
    yield handlers
    for handler in handlers:
        logging.getLogger().removeHandler(handler)
        handler.close()


OUT_OF_MEMORY_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))  # a real allocation failure, safely
import mindspore as ms
import numpy as np
from mindspore import nn, ops
from src.model_utils.cli import run_main

def main():
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    conv = nn.Conv2d(3, 64, 3, weight_init="normal")
    batch = ops.tile(ms.Tensor(np.zeros((1, 3, 112, 96), np.float32)), (4000, 1, 1, 1))  # a 4000-image batch
    conv(batch).asnumpy()

sys.exit(run_main(main))
"""


def test_out_of_memory_at_a_larger_batch_says_what_to_lower():
    result = run_tool("-c", OUT_OF_MEMORY_SCRIPT)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: out of memory (MindSpore kernel Conv2D-op" in result.stderr
    assert "GiB): lower batch_size or eval_batch_size" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: out of memory")  # after MindSpore's C++ lines
