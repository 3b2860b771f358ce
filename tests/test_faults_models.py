"""Damaged and mistaken model files (see the fault table, docs/faults.md): truncated or corrupted checkpoints and
MINDIRs, files renamed to the other extension, a checkpoint of another backbone."""

import functools
import json
import os

import mindspore as ms
import numpy as np
import pytest
from tiny_training import TINY_EVAL, eval_args

from src.data.digits import prepare_digits
from src.deploy.export_model import run_export
from src.eval.evaluation import evaluate
from src.eval.models import load_network
from src.infer import command as infer_cli
from src.infer.predictor import Predictor
from src.model_utils.cli import run_main
from src.model_utils.config import load_config
from src.network import build_backbone
from src.network.weights import CheckpointMismatchError, DamagedFileError, load_backbone_weights

DAMAGED = "truncated or damaged checkpoint"


def tiny_backbone(name="sphere4"):
    return build_backbone(name, embedding_size=8, image_size=(32, 32), width=0.125)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return prepare_digits(str(tmp_path_factory.mktemp("digits")), (32, 32), pairs_per_fold=8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A sphere4 checkpoint with MindSpore's CRC trailer, as train.py writes them."""
    path = str(tmp_path_factory.mktemp("ckpt") / "net.ckpt")
    ms.save_checkpoint(tiny_backbone(), path, crc_check=True)
    return path


@pytest.fixture(scope="module")
def mindir(tmp_path_factory, checkpoint):
    """The checkpoint's network exported."""
    base = str(tmp_path_factory.mktemp("mindir") / "net")
    network = load_backbone_weights(tiny_backbone(), checkpoint)
    network.set_train(False)
    ms.export(network, ms.Tensor(np.zeros((4, 3, 32, 32), np.float32)), file_name=base, file_format="MINDIR")
    return base + ".mindir"


def copy(source, path, size=None):
    with open(source, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:size])
    return str(path)


def overwrite(path, offset, byte, count=64):
    """``count`` bytes at ``offset`` overwritten with ``byte`` (as `printf` + `dd conv=notrunc` would)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes([byte]) * count)


def cfg_for(model, *extra):
    return load_config(TINY_EVAL + [f"--ckpt_file={model}", *extra])


def entry_point(run, entry):
    """What the entry point ``entry``.py runs: its own keys from the command line, then ``run``."""
    return lambda argv: run(load_config(argv, entry=entry))


def test_truncated_checkpoint_is_one_line_in_eval_export_and_infer(digits, checkpoint, tmp_path, capsys):
    truncated = copy(checkpoint, tmp_path / "t.ckpt", os.path.getsize(checkpoint) // 3)
    images = sorted(os.path.join(root, n) for root, _, names in os.walk(digits["eval_root"]) for n in names)[:2]
    export_args = [arg for arg in TINY_EVAL if not arg.startswith("--cpu_kernels")]  # export never runs kernels
    runs = {
        "eval.py": functools.partial(
            entry_point(evaluate, "eval"), TINY_EVAL + eval_args(digits, truncated, tmp_path / "r.json")
        ),
        "export.py": functools.partial(
            entry_point(run_export, "export"),
            export_args + [f"--ckpt_file={truncated}", f"--file_name={tmp_path / 'x'}"],
        ),
        "infer.py": functools.partial(infer_cli.main, [*images, "--aligned", *TINY_EVAL, f"--ckpt_file={truncated}"]),
    }
    for name, main in runs.items():
        assert run_main(main) == 1, name
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {truncated}: {DAMAGED} ("), (name, lines)


def test_folder_evaluation_skips_a_damaged_checkpoint_and_records_it(digits, checkpoint, tmp_path, caplog):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    good = [copy(checkpoint, folder / f"step_{k}.ckpt") for k in (1, 3)]
    bad = copy(checkpoint, folder / "step_2.ckpt", 3000)
    record = evaluate(load_config(TINY_EVAL + eval_args(digits, folder, tmp_path / "r.json")))
    assert sorted(record["models"]) == sorted(good)
    assert list(record["skipped"]) == [bad] and DAMAGED in record["skipped"][bad]
    assert json.loads((tmp_path / "r.json").read_text())["skipped"] == record["skipped"]
    assert any(m.startswith(f"skipped {bad}: {DAMAGED}") for m in caplog.messages)


def test_corrupted_checkpoint_is_refused_by_its_crc(digits, checkpoint, tmp_path):
    """64 bytes of 0x3f inside the weights: finite values, so only the CRC can tell. Every reader refuses it."""
    corrupted = copy(checkpoint, tmp_path / "c.ckpt")
    overwrite(corrupted, os.path.getsize(corrupted) // 2, 0x3F)
    match = f"{DAMAGED} \\(its CRC does not match its content"
    with pytest.raises(DamagedFileError, match=match):
        evaluate(load_config(TINY_EVAL + eval_args(digits, corrupted, tmp_path / "r.json")))
    with pytest.raises(DamagedFileError, match=match):
        Predictor(cfg_for(corrupted))
    with pytest.raises(DamagedFileError, match=match):
        load_backbone_weights(tiny_backbone(), corrupted)


def test_damage_and_divergence_are_told_apart(checkpoint, tmp_path):
    """0xff bytes read as NaN: a file whose CRC fails is damaged; an intact file holding NaN is a diverged run."""
    damaged = copy(checkpoint, tmp_path / "d.ckpt")
    overwrite(damaged, os.path.getsize(damaged) // 2, 0xFF)
    with pytest.raises(DamagedFileError, match=DAMAGED):
        load_backbone_weights(tiny_backbone(), damaged)
    net = tiny_backbone()
    params = {p.name: p.asnumpy() for p in net.get_parameters()}
    params["features.0.weight"][:] = np.nan
    diverged = str(tmp_path / "n.ckpt")
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], diverged, crc_check=True)
    with pytest.raises(CheckpointMismatchError, match="holds .* non-finite value.*: the run that wrote it diverged;"):
        load_backbone_weights(tiny_backbone(), diverged)


def test_model_files_are_recognised_by_their_content(checkpoint, mindir, tmp_path):
    """A MINDIR renamed .ckpt runs as a MINDIR, a checkpoint renamed .mindir loads as a checkpoint."""
    inputs = ms.Tensor(np.random.default_rng(0).random((4, 3, 32, 32), np.float32))
    expected = load_network(cfg_for(checkpoint), checkpoint)[0](inputs).asnumpy()
    for source, name in ((mindir, "exported.ckpt"), (checkpoint, "weights.mindir")):
        renamed = copy(source, tmp_path / name)
        network, _ = load_network(cfg_for(renamed), renamed)
        np.testing.assert_allclose(network(inputs).asnumpy(), expected, atol=1e-4)


def test_truncated_mindir_is_named_damaged(mindir, tmp_path):
    truncated = copy(mindir, tmp_path / "t.mindir", os.path.getsize(mindir) // 2)
    with pytest.raises(DamagedFileError, match=f"{truncated}: truncated or damaged MINDIR") as caught:
        load_network(cfg_for(truncated), truncated)
    assert "MindIR version" not in str(caught.value) and "Lite" not in str(caught.value)


def test_checkpoint_of_another_backbone_names_both(tmp_path):
    path = str(tmp_path / "sphere10.ckpt")
    ms.save_checkpoint(tiny_backbone("sphere10"), path, crc_check=True)
    cfg = load_config(["--config_path=", "--backbone=mobilefacenet", "--embedding_size=8", "--image_size=[32, 32]"])
    with pytest.raises(CheckpointMismatchError, match=f"{path} holds a sphere10 backbone, the config builds mobilef"):
        load_network(cfg, path)
