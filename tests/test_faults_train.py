"""Faults of a training run (tiny network, in process; see the fault table, docs/faults.md): non-finite
settings, a NaN streak that must roll back to weights from before it, which of loss and gradient was not
finite, checkpoints with NaN weights refused by name."""

import logging
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from tiny_training import digits_subset, load_params, tiny_args

from src.heads import margin_parameters
from src.model_utils.config import ConfigError, load_config
from src.network import build_backbone
from src.network.weights import CheckpointMismatchError, load_backbone_weights
from src.train.checkpoint import CheckpointError, list_checkpoints
from src.train.loop import judge_step, train
from src.train.nan_guard import NonFiniteGuard, NonFiniteLossError
from src.train.output_files import OutputWriteError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return digits_subset(str(tmp_path_factory.mktemp("digits")))


def run(data, output_dir, **overrides):
    return train(load_config(tiny_args(data, str(output_dir), **overrides)))


def max_weight(path):
    return max(
        float(np.abs(v).max())
        for k, v in load_params(path).items()
        if k.startswith(("backbone.", "head.")) and v.dtype.kind == "f" and v.size
    )


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", ".nan"])
def test_non_finite_float_settings_are_refused(text):
    with pytest.raises(ConfigError, match="config key 'lr': .* is not a finite number"):
        load_config([f"--lr={text}"])
    with pytest.raises(ConfigError, match="config key 'head.s': .* is not a finite number"):
        load_config([f"--head={{type: cosface, s: {text}}}"], block_variants={"head": margin_parameters})


def test_nan_streak_rolls_back_to_weights_from_before_it(data, tmp_path):
    """The issue's reproduction: lr x1e8 from step 6 blows the weights up at once (step 6 is still finite, step 7
    is not). No checkpoint is written during the streak; rollbacks go to step 4 (the step-6 one gave the NaN step
    its weights and is set aside), and what is left for --resume is healthy."""
    with pytest.raises(NonFiniteLossError, match="after 3 rollbacks"):
        run(
            data,
            tmp_path,
            warmup_steps=0,
            lr_schedule="multistep",
            lr=0.01,
            lr_milestones="[5]",
            lr_gamma=1e8,
            max_steps=30,
            nan_patience=3,
            keep_checkpoints=3,
            save_interval=2,
        )
    folder = str(tmp_path / "checkpoints")
    log = (tmp_path / "log_rank0.txt").read_text()
    assert log.count("rolled back from step 9 to") == 3 and "step_00000004.ckpt (step 4)" in log
    assert "no checkpoint saved while updates are skipped" in log
    assert [os.path.basename(p) for p in list_checkpoints(folder)] == ["step_00000002.ckpt", "step_00000004.ckpt"]
    assert os.path.exists(os.path.join(folder, "step_00000006.diverged.ckpt"))
    assert max(max_weight(p) for p in list_checkpoints(folder)) < 1.0
    assert max_weight(os.path.join(folder, "step_00000006.diverged.ckpt")) > 100.0


def test_warning_says_whether_the_loss_or_a_gradient_was_not_finite(caplog):
    guard = NonFiniteGuard("skip")
    with caplog.at_level(logging.WARNING):
        guard.update(7, False, float("nan"))
        guard.update(8, False, 23.49)
    first, second = caplog.messages
    assert "step 7: non-finite loss, loss=nan" in first
    assert "step 8: non-finite gradient (the loss is finite), loss=23.49" in second


@pytest.mark.parametrize("policy", ["skip", "rollback", "stop"])
def test_overflows_at_loss_scale_one_stop_the_run_under_any_policy(policy):
    guard = NonFiniteGuard(policy, patience=3)
    for step, scale in enumerate((512.0, 256.0, 1.0, 1.0), 1):  # the scaler's business, then two at its floor
        assert guard.update(step, False, 2.5, scale) is None
    assert guard.update(5, True, 2.4, None) is None  # a finite step ends the run of overflows at 1
    for step in (6, 7):
        assert guard.update(step, False, 2.5, 1.0) is None
    with pytest.raises(NonFiniteLossError, match="step 8: 3 gradient overflows in a row at loss scale 1"):
        guard.update(8, False, 2.5, 1.0)
    assert guard.in_a_row == 0 and not guard.skipping  # not divergence: no rollback, checkpoints still saved


def test_the_loop_reads_the_loss_scale_and_stops_without_setting_checkpoints_aside():
    import mindspore as ms

    set_aside = []
    saver = SimpleNamespace(set_aside=set_aside.append)
    step_cell = SimpleNamespace(loss_scaler=SimpleNamespace(scale_value=ms.Tensor(1.0)))
    guard = NonFiniteGuard("rollback", patience=1)
    with pytest.raises(NonFiniteLossError, match="step 5: 1 gradient overflows in a row at loss scale 1"):
        judge_step(guard, SimpleNamespace(step=5, rollbacks=0), False, 2.5, step_cell, saver)
    assert set_aside == []  # skipped updates left the weights as they were


def test_overflow_above_scale_one_resets_the_count_and_a_non_finite_loss_is_divergence():
    guard = NonFiniteGuard("stop", patience=2)
    assert guard.update(1, False, 2.5, 1.0) is None
    assert guard.update(2, False, 2.5, 2.0) is None  # the scale grew back: the run of overflows at 1 is over
    assert guard.update(3, False, 2.5, 1.0) is None
    assert guard.update(4, False, float("nan"), 1.0) is None  # a non-finite loss counts as divergence
    with pytest.raises(NonFiniteLossError, match="2 non-finite steps in a row"):
        guard.update(5, False, float("inf"), 1.0)


def test_checkpoint_with_nan_weights_is_refused_by_name(tmp_path):
    import mindspore as ms

    backbone = build_backbone("sphere4", embedding_size=8, width=0.125, image_size=(16, 16))
    params = {p.name: p.asnumpy() for p in backbone.get_parameters()}
    name = min(params)
    params[name] = np.full_like(params[name], np.nan)
    path = str(tmp_path / "diverged.ckpt")
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], path, crc_check=True)
    with pytest.raises(
        CheckpointMismatchError, match=f"diverged.ckpt: parameter '{name}' holds .* non-finite .*: the run that wrote"
    ):
        load_backbone_weights(build_backbone("sphere4", embedding_size=8, width=0.125, image_size=(16, 16)), path)


def test_resume_on_a_full_disk_names_the_file_and_leaves_no_temporary(data, tmp_path):
    """metrics.csv.tmp is made a link to /dev/full, where every write fails with ENOSPC as on a full disk."""
    run(data, tmp_path, max_steps=4, save_interval=2)
    metrics = tmp_path / "metrics.csv"
    before = metrics.read_text()
    os.symlink("/dev/full", tmp_path / "metrics.csv.tmp")
    with pytest.raises(
        OutputWriteError,
        match=r"cannot write .*metrics.csv: No space left on device \(the disk is "
        r"full; the checkpoints written before are intact.*--resume\)",
    ):
        run(data, tmp_path, max_steps=6, save_interval=2, resume="auto")
    assert not os.path.lexists(tmp_path / "metrics.csv.tmp")
    assert metrics.read_text() == before
    assert [os.path.basename(p) for p in list_checkpoints(str(tmp_path / "checkpoints"))] == [
        "step_00000002.ckpt",
        "step_00000004.ckpt",
    ]


def test_resume_from_a_run_of_another_head_is_refused(data, tmp_path):
    """CosFace and ArcFace heads have the same parameter shapes: without the check the run would go on silently
    with the other head."""
    run(data, tmp_path, head="{type: cosface}", max_steps=2, save_interval=2)
    with pytest.raises(
        ConfigError,
        match="step_00000002.ckpt continues a run of head=cosface, this config has "
        "arcface: resume with --head.type=cosface",
    ):
        run(data, tmp_path, head="{type: arcface}", max_steps=4, resume="auto")


def test_checkpoint_of_another_code_base_is_named(data, tmp_path):
    """A MindSpore 1.x model-zoo style checkpoint (no CRC trailer, other layer names) given to eval/export (via
    load_backbone_weights) or to --resume."""
    import mindspore as ms

    path = str(tmp_path / "sphereface_ascend_v130.ckpt")
    ms.save_checkpoint(
        [
            {"name": name, "data": ms.Tensor(np.ones(shape, np.float32))}
            for name, shape in (
                ("conv1_1.weight", (64, 3, 3, 3)),
                ("conv1_2.weight", (64, 64, 3, 3)),
                ("fc5.weight", (512, 21504)),
            )
        ],
        path,
    )
    backbone = build_backbone("sphere4", embedding_size=8, width=0.125, image_size=(16, 16))
    with pytest.raises(
        CheckpointMismatchError,
        match="1 of the network's .* parameter names are in it .*MindSpore 1.x model zoo's sphereface",
    ):
        load_backbone_weights(backbone, path)
    with pytest.raises(CheckpointError, match="is a checkpoint without a CRC trailer: not one train.py wrote"):
        run(data, tmp_path / "run", max_steps=2, resume=path)


def test_resume_with_a_changed_list_warns_that_the_data_order_changes(data, tmp_path):
    run(data, tmp_path / "run", max_steps=2, save_interval=2)
    lines = Path(data["train_list"]).read_text(encoding="utf-8").splitlines()
    shorter = tmp_path / "shorter.txt"
    shorter.write_text("\n".join(lines[:-8]) + "\n", encoding="utf-8")
    run(data, tmp_path / "run", max_steps=2, resume="auto", train_list=str(shorter))  # nothing left to train
    log = (tmp_path / "run" / "log_rank0.txt").read_text()
    assert "continues a run over 112 images, the list now has 104: the data order from step 2 on differs" in log


def test_resume_without_the_runs_head_names_the_head_it_holds(data, tmp_path):
    """A run of cosface resumed with the default head (asoftmax, whose margin has a step counter): the head's
    parameters differ too, and the message names the run's head, not a parameter missing from it."""
    run(data, tmp_path, head="{type: cosface}", max_steps=2, save_interval=2)
    with pytest.raises(ConfigError, match="continues a run of head=cosface, this config has asoftmax: resume with"):
        run(data, tmp_path, max_steps=4, resume="auto")


def test_resume_restores_without_mindspore_warnings(data, tmp_path, monkeypatch):
    """The learning rates are rebuilt, not restored: MindSpore is not left to warn that they 'are not loaded'."""
    from mindspore import log as ms_log

    run(data, tmp_path, max_steps=2, save_interval=2)
    warnings = []
    monkeypatch.setattr(ms_log, "warning", lambda text, *args: warnings.append(str(text) % args))
    run(data, tmp_path, max_steps=3, resume="auto")
    assert not [text for text in warnings if "are not loaded" in text]


def test_finished_run_resumed_says_it_is_complete(data, tmp_path, caplog):
    run(data, tmp_path, max_steps=2, save_interval=2)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facerec.train"):
        run(data, tmp_path, max_steps=2, resume="auto")
    assert "the run is already complete (step 2 of 2): nothing to do" in caplog.messages
    assert not any(m.startswith(("training ", "finished ")) for m in caplog.messages)
