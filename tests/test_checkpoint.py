"""Checkpoints: the whole training state round-trips, writes are atomic (a full disk leaves the previous
checkpoint intact), a truncated newest file falls back to the previous one, a checkpoint of another network
names the mismatched parameter, and resume settings are checked."""

import errno
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from src.heads import build_head
from src.network import build_backbone
from src.network.weights import CheckpointMismatchError
from src.train.checkpoint import (
    CheckpointError,
    CheckpointManager,
    find_resume,
    list_checkpoints,
    newest_complete,
    read_checkpoint,
    restore,
)
from src.train.optimizer import build_optimizer, param_groups, set_learning_rates
from src.train.run_state import RunState
from src.train.train_network import FaceTrainNetwork
from src.train.train_step import TrainStep

BATCH = ms.Tensor(np.random.RandomState(0).randn(8, 3, 32, 32).astype(np.float32))
LABELS = ms.Tensor(np.arange(8) % 5, ms.int32)


def make_step(backbone="sphere4", head="asoftmax", classes=5, amp=True, seed=1, legacy_sgd=False):
    """``legacy_sgd``: MindSpore's ``nn.SGD`` (the optimizer before ``MomentumSGD``) with the same groups."""
    ms.set_seed(seed)
    network = FaceTrainNetwork(
        build_backbone(backbone, width=0.125, image_size=(32, 32), embedding_size=16),
        build_head(head, embedding_size=16, num_classes=classes),
    )
    rates = np.full(10, 0.1, np.float32)
    if legacy_sgd:
        optimizer = nn.SGD(param_groups(network.trainable_params(), 5e-4), learning_rate=ms.Tensor(rates), momentum=0.9)
    else:
        optimizer = build_optimizer(network.trainable_params(), rates, 0.9, 5e-4)
    scaler = ms.amp.DynamicLossScaler(1024.0, 2, 2) if amp else None
    step = TrainStep(network, optimizer, loss_scaler=scaler)
    step.set_train(True)
    return step


def state_of(cell):
    return {p.name: p.asnumpy().copy() for p in cell.get_parameters()}


@pytest.fixture(scope="module")
def trained():
    """A TrainStep after 3 steps (A-Softmax iteration 3, moments, global step, loss scale all moved)."""
    step = make_step()
    for _ in range(3):
        step(BATCH, LABELS)
    return step


def test_the_whole_state_round_trips(trained, tmp_path):
    state = RunState(
        step=3,
        epoch=1,
        seed=7,
        global_batch=8,
        lr_factor=0.1 * 0.5,
        rollbacks=2,
        best_accuracy=0.8316666666666667,
        best_step=2,
        evals_since_best=1,
        backbone="sphere4",
        head="asoftmax",
        num_classes=5,
    )
    path = CheckpointManager(str(tmp_path), keep=2).save(trained, state)
    assert os.path.basename(path) == "step_00000003.ckpt"
    fresh = make_step(seed=2)
    restored = restore(fresh, read_checkpoint(path), path)
    assert restored == state
    saved, loaded = state_of(trained), state_of(fresh)
    assert sorted(saved) == sorted(loaded)
    assert {"head.margin.iteration", "global_step", "loss_scale.value", "loss_scale.counter"} <= set(saved)
    assert any(name.startswith("moments.") for name in saved)
    assert all(np.array_equal(saved[name], loaded[name]) for name in saved)
    assert int(loaded["head.margin.iteration"]) == 3 and float(loaded["loss_scale.value"]) == 2048.0


def test_a_checkpoint_from_before_the_head_split_restores(trained, tmp_path):
    """Checkpoints written when the head owned W and its state directly (``head.weight``, ``head.iteration``,
    ``accum.head.weight``, ...) restore into today's ``head.centres`` / ``head.margin`` names."""
    old_names = {"head.centres.weight": "head.weight", "head.margin.iteration": "head.iteration"}
    entries = []
    for param in trained.get_parameters():
        name = param.name
        for new, old in old_names.items():
            if name.endswith(new):
                name = name[: -len(new)] + old
        entries.append({"name": name, "data": param.value()})
    assert {"head.weight", "moments.head.weight", "head.iteration"} <= {e["name"] for e in entries}
    path = str(tmp_path / "old.ckpt")
    ms.save_checkpoint(entries, path, append_dict=RunState(step=3).to_entries(), crc_check=True)
    fresh = make_step(seed=2)
    restore(fresh, read_checkpoint(path), path)
    saved, loaded = state_of(trained), state_of(fresh)
    assert all(np.array_equal(saved[name], loaded[name]) for name in saved)


def test_a_checkpoint_written_with_nn_sgd_resumes_where_it_left_off(tmp_path):
    """Checkpoints of runs trained with ``nn.SGD`` (buffers ``accum.*`` and ``stat.*``) restore into today's
    ``MomentumSGD`` (``moments.*``), and the steps after resume equal nn.SGD's own, bit for bit."""
    old = make_step(legacy_sgd=True)
    for _ in range(3):
        old(BATCH, LABELS)
    path = CheckpointManager(str(tmp_path), keep=1).save(old, RunState(step=3))
    assert {"accum.head.centres.weight", "stat.head.centres.weight"} <= set(ms.load_checkpoint(path))
    resumed = make_step(seed=2)
    restore(resumed, read_checkpoint(path), path)
    for _ in range(2):
        old(BATCH, LABELS)
        resumed(BATCH, LABELS)
    before, after = state_of(old), state_of(resumed)
    assert before["head.centres.weight"].any() and after["moments.head.centres.weight"].any()
    for name, value in after.items():
        np.testing.assert_array_equal(value, before[name.replace("moments.", "accum.", 1)], err_msg=name)


def test_keeps_the_last_k_and_the_best(trained, tmp_path):
    manager = CheckpointManager(str(tmp_path), keep=2)
    for step in (5, 10, 15):
        manager.save(trained, RunState(step=step))
        if step == 5:
            manager.save_best(trained, RunState(step=5, best_accuracy=0.9))
    assert [os.path.basename(p) for p in list_checkpoints(str(tmp_path))] == [
        "step_00000010.ckpt",
        "step_00000015.ckpt",
    ]
    assert RunState.from_entries(read_checkpoint(manager.best_path)).best_accuracy == 0.9
    assert sorted(os.listdir(tmp_path)) == ["best.ckpt", "step_00000010.ckpt", "step_00000015.ckpt"]


def test_a_truncated_or_damaged_newest_checkpoint_falls_back(trained, tmp_path):
    manager = CheckpointManager(str(tmp_path), keep=5)
    manager.save(trained, RunState(step=4))
    newest = manager.save(trained, RunState(step=8))
    data = open(newest, "rb").read()
    os.chmod(newest, 0o600)
    for damaged in (data[: len(data) // 2], data[:-1], data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]):
        with open(newest, "wb") as f:
            f.write(damaged)
        with pytest.raises(CheckpointError, match="step_00000008.ckpt: truncated or damaged checkpoint"):
            read_checkpoint(newest)
        path, entries = newest_complete(str(tmp_path))
        assert os.path.basename(path) == "step_00000004.ckpt" and RunState.from_entries(entries).step == 4


def test_a_full_disk_leaves_the_previous_checkpoint_intact(trained, tmp_path, monkeypatch):
    manager = CheckpointManager(str(tmp_path), keep=1)
    previous = manager.save(trained, RunState(step=4))
    before = open(previous, "rb").read()

    def disk_full(cell, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(ms, "save_checkpoint", disk_full)
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*step_00000008.ckpt.*No space left"):
        manager.save(trained, RunState(step=8))
    assert os.listdir(tmp_path) == ["step_00000004.ckpt"]
    assert open(previous, "rb").read() == before
    # a save killed before its rename leaves temporaries: the next run removes them, the checkpoint stays
    for name in ("step_00000008.tmp.ckpt", "step_00000008.tmp.tmp"):
        (tmp_path / name).write_bytes(b"partial")
    manager.remove_partial()
    assert os.listdir(tmp_path) == ["step_00000004.ckpt"]


WRITER = r" \(the checkpoint was written by sphere4 \+ asoftmax with 5 classes\)"


@pytest.mark.parametrize(
    "other, named",
    [
        (
            {"classes": 7},
            r"parameter 'head.centres.weight' has shape \(5, 16\), the network expects \(7, 16\)" + WRITER,
        ),
        ({"backbone": "sphere10"}, r"no value for parameter 'backbone.features.4.body.0.weight'" + WRITER),
        ({"head": "cosface"}, r"parameter 'head.margin.iteration' is not in the network"),
        ({"amp": False}, r"parameter 'loss_scale.counter' is not in the network \(2 unexpected in all\)"),
    ],
)
def test_a_checkpoint_of_another_network_names_the_parameter(trained, tmp_path, other, named):
    path = CheckpointManager(str(tmp_path), keep=1).save(
        trained, RunState(step=3, backbone="sphere4", head="asoftmax", num_classes=5)
    )
    with pytest.raises(CheckpointMismatchError, match=named):
        restore(make_step(**other), read_checkpoint(path), path)


def test_resume_settings(trained, tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    os.makedirs(folder)
    assert find_resume("", str(folder)) is None
    assert find_resume("auto", str(folder)) is None
    with pytest.raises(CheckpointError, match=r"'resume': no complete checkpoint .* in .*run/checkpoints"):
        find_resume(str(tmp_path / "run"), str(tmp_path / "other"))
    with pytest.raises(CheckpointError, match="checkpoint not found: .*missing.ckpt"):
        find_resume(str(tmp_path / "missing.ckpt"), str(folder))
    CheckpointManager(str(folder), keep=1).save(trained, RunState(step=6))
    with pytest.raises(CheckpointError, match="already holds checkpoints .*step_00000006.ckpt.*--resume"):
        find_resume("", str(folder))
    for resume in ("auto", str(tmp_path / "run"), str(folder), str(folder / "step_00000006.ckpt")):
        path, entries = find_resume(resume, str(folder))
        assert path.endswith("step_00000006.ckpt") and RunState.from_entries(entries).step == 6


def test_a_restore_after_running_continues_exactly_once_the_step_is_renewed(tmp_path):
    """The NaN rollback path: a TrainStep that ran, diverged (lr x1e4) and was restored from its step-2
    checkpoint continues with the same losses as an uninterrupted run, once renewed (a compiled graph keeps
    the optimizer's old buffers after an in-place restore)."""
    reference = make_step()
    expected = [float(reference(BATCH, LABELS)[0]) for _ in range(4)]
    step = make_step()
    for _ in range(2):
        step(BATCH, LABELS)
    path = CheckpointManager(str(tmp_path), keep=1).save(step, RunState(step=2))
    set_learning_rates(step.optimizer, np.full(10, 1e3, np.float32))
    step = step.renewed()
    diverged = [float(step(BATCH, LABELS)[0]) for _ in range(2)]
    assert diverged[1] != pytest.approx(expected[3])
    restore(step, read_checkpoint(path), path)
    set_learning_rates(step.optimizer, np.full(10, 0.1, np.float32))
    step = step.renewed()
    assert [float(step(BATCH, LABELS)[0]) for _ in range(2)] == expected[2:]
