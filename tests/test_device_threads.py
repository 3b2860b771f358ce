"""The CPU thread count: the configured value, or the cores this process may use."""

import os

from src.model_utils.config import load_config
from src.model_utils.device import cpu_threads


def test_threads_default_to_usable_cores():
    cfg = load_config([])
    assert cfg.num_threads is None
    assert cpu_threads(cfg) == len(os.sched_getaffinity(0)) >= 1


def test_configured_threads_win():
    assert cpu_threads(load_config(["--num_threads=3"])) == 3
