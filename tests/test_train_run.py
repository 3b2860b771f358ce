"""train.py end to end on a tiny network (in process): checkpoints at intervals and epoch ends, best.ckpt from
validation, metrics CSV + TensorBoard events + curves, early stop, NaN rollback / stop, and bad settings."""

import glob
import os
import struct

import numpy as np
import pytest
from tiny_training import digits_subset, digits_targets, load_params, tiny_args

from src.model_utils.config import ConfigError, load_config
from src.network.weights import CheckpointMismatchError
from src.train.checkpoint import CheckpointError, list_checkpoints, read_checkpoint
from src.train.loop import device_batch_size, train
from src.train.metrics_log import read_metrics
from src.train.nan_guard import NonFiniteLossError
from src.train.run_state import RunState
from tools.plot_curves import plot_curves


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return digits_subset(str(tmp_path_factory.mktemp("digits")))


def run(data, output_dir, **overrides):
    return train(load_config(tiny_args(data, str(output_dir), **overrides)))


def state_at(path):
    return RunState.from_entries(read_checkpoint(path))


def tensorboard_scalars(folder):
    """{tag: [(step, value)]} from the tfevents files (TFRecord framing around tensorboard Event protos)."""
    from tensorboardX.proto import event_pb2

    scalars = {}
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        data = open(path, "rb").read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_checkpoints_validation_metrics_and_curves(data, tmp_path):
    """112 images / batch 8 = 14 steps an epoch; 20 steps with save_interval 6 save at 6, 12, 14 (epoch end),
    18, 20 (end), the last 3 kept; validation at 10 and 20 keeps best.ckpt."""
    run(
        data,
        tmp_path,
        max_steps=20,
        save_interval=6,
        log_interval=5,
        val_targets=digits_targets(data),
        eval_interval=10,
    )
    folder = tmp_path / "checkpoints"
    assert [os.path.basename(p) for p in list_checkpoints(str(folder))] == [
        "step_00000014.ckpt",
        "step_00000018.ckpt",
        "step_00000020.ckpt",
    ]
    final = state_at(str(folder / "step_00000020.ckpt"))
    assert (final.step, final.epoch, final.seed, final.global_batch, final.num_classes) == (20, 2, 3, 8, 7)

    series = read_metrics(str(tmp_path / "metrics.csv"))
    assert series["train/loss"][0] == [5, 10, 15, 20]
    assert series["train/epoch"][1] == [1.0, 1.0, 2.0, 2.0]
    assert series["val/accuracy"][0] == [10, 20]
    assert all(np.isfinite(series["train/loss"][1]))
    accuracies = series["val/accuracy"][1]
    best = state_at(str(folder / "best.ckpt"))
    assert best.best_accuracy == max(accuracies) and best.step == [10, 20][int(np.argmax(accuracies))]
    assert final.best_accuracy == max(accuracies)
    assert 0.5 < max(accuracies) <= 1.0

    board = tensorboard_scalars(str(tmp_path / "tensorboard"))
    assert [step for step, _ in board["train/loss"]] == [5, 10, 15, 20]
    np.testing.assert_allclose([v for _, v in board["val/accuracy"]], accuracies, rtol=1e-6)

    pngs = plot_curves(str(tmp_path / "metrics.csv"), str(tmp_path / "plots"))
    assert sorted(os.path.basename(p) for p in pngs) == ["accuracy.png", "loss.png", "lr.png"]
    for png in pngs:
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 5000


def test_early_stop_after_patience_validations_without_improvement(data, tmp_path):
    """lr 0: the backbone never changes, so the second validation cannot beat the first: stop at step 10 with a
    checkpoint of that step."""
    run(
        data,
        tmp_path,
        lr=0.0,
        max_steps=40,
        save_interval=100,
        val_targets=digits_targets(data),
        eval_interval=5,
        early_stop_patience=1,
    )
    paths = list_checkpoints(str(tmp_path / "checkpoints"))
    assert [os.path.basename(p) for p in paths] == ["step_00000010.ckpt"]
    state = state_at(paths[-1])
    assert (state.best_step, state.evals_since_best) == (5, 1)
    assert "early stop: no improvement" in open(tmp_path / "log_rank0.txt").read()


def test_nan_run_rolls_back_with_a_lower_learning_rate(data, tmp_path):
    """lr 0.05 for 5 steps, then x1e7 (a multistep 'decay' of 1e7): losses turn NaN, 2 in a row roll back to the
    step-4 checkpoint with the learning rate x1e-7, and the run finishes with finite weights."""
    run(
        data,
        tmp_path,
        warmup_steps=0,
        lr_schedule="multistep",
        lr_milestones="[5]",
        lr_gamma=1.0e7,
        max_steps=16,
        save_interval=4,
        keep_checkpoints=10,
        nan_patience=2,
        nan_lr_factor=1.0e-7,
    )
    log = open(tmp_path / "log_rank0.txt").read()
    assert "non-finite loss" in log and "rolled back from step" in log
    final = state_at(str(tmp_path / "checkpoints" / "step_00000016.ckpt"))
    assert final.rollbacks == 1 and final.lr_factor == pytest.approx(1e-7)
    assert all(np.isfinite(v).all() for v in load_params(str(tmp_path / "checkpoints" / "step_00000016.ckpt")).values())
    lrs = read_metrics(str(tmp_path / "metrics.csv"))["train/lr"]
    assert lrs[1][lrs[0].index(16)] == pytest.approx(0.05 * 1e7 * 1e-7, rel=1e-5)


def test_nan_policy_stop_names_the_setting(data, tmp_path):
    with pytest.raises(NonFiniteLossError, match="2 non-finite steps in a row .*nan_policy=stop"):
        run(data, tmp_path, warmup_steps=0, lr=1.0e6, max_steps=10, nan_patience=2, nan_policy="stop")


def test_bad_settings_stop_with_a_clear_message(data, tmp_path):
    with pytest.raises(ConfigError, match="amp_level.*needs device_target GPU or Ascend"):
        run(data, tmp_path / "a", amp_level="O2")
    with pytest.raises(ConfigError, match="'eval_interval' is set but 'val_targets' is empty"):
        run(data, tmp_path / "b", eval_interval=5)
    with pytest.raises(ConfigError, match="'global_batch_size': 18 images do not split evenly over 4 workers"):
        device_batch_size(load_config(["--global_batch_size=18"]), 4)
    assert device_batch_size(load_config(["--global_batch_size=16"]), 4) == 4
    with pytest.raises(CheckpointError, match="'resume': no complete checkpoint"):
        run(data, tmp_path / "c", resume=str(tmp_path))


def test_resume_checks_the_run_it_continues(data, tmp_path):
    """A finished 4-step run: a new run into the same folder is refused, a resume with another class count or
    seed is refused naming the parameter or key, and --resume continues to a longer max_steps."""
    run(data, tmp_path, max_steps=4, save_interval=2)
    with pytest.raises(CheckpointError, match="already holds checkpoints .*--resume"):
        run(data, tmp_path, max_steps=4)
    with pytest.raises(
        CheckpointMismatchError,
        match=r"'head.centres.weight' has shape \(7, 16\), the network expects "
        r"\(9, 16\) .*sphere4 \+ asoftmax with 7 classes",
    ):
        run(data, tmp_path, max_steps=4, num_classes=9, resume="auto")
    with pytest.raises(ConfigError, match="seed=3, this config has 4"):
        run(data, tmp_path, max_steps=4, seed=4, resume="auto")
    run(data, tmp_path, max_steps=6, save_interval=2, resume="auto")
    assert state_at(str(tmp_path / "checkpoints" / "step_00000006.ckpt")).step == 6
    assert "resumed from" in open(tmp_path / "log_rank0.txt").read()
