"""Overflow checks that agree across ranks: with a flag local to each device (Ascend's float status register,
stood in for by a patched ``amp.all_finite`` that differs by rank), 2 CPU workers under msrun skip the same steps
and keep equal weights and loss scales."""

import os

import numpy as np
from test_partial_fc import msrun_worker
from tiny_training import ROOT

WORKER = os.path.join(ROOT, "tests", "overflow_worker.py")


def test_ranks_with_different_overflow_flags_skip_the_same_steps(tmp_path):
    rank0, rank1 = msrun_worker(tmp_path, worker=WORKER)
    assert rank0["finite"] == rank1["finite"]
    assert True in rank0["finite"] and False in rank0["finite"], rank0["finite"]
    assert rank0["scale"] == rank1["scale"]
    for name, value in rank0["weights"].items():
        np.testing.assert_array_equal(np.array(rank1["weights"][name]), np.array(value), err_msg=name)
