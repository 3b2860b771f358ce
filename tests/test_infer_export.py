"""Inference from an exported MINDIR and its sidecar alone: ``Predictor.from_export`` gives the config path's
embeddings, infer.py runs a 1:1 call with no config (and no Ascend), and a sidecar it cannot use is one clear line."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from deploy_helpers import LFW
from lite_helpers import FIXTURE_ARGS

from src.deploy.export_model import run_export
from src.eval.sidecar import FORMAT_VERSION, SidecarError, read_sidecar
from src.infer import command as infer_cli
from src.infer.predictor import Predictor
from src.model_utils.config import load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_mindir(tmp_path_factory):
    """export.py's MINDIR of the Lite fixture checkpoint (40x32 inputs, 16-d embedding), fixed batch 4."""
    base = tmp_path_factory.mktemp("export") / "tiny_b4"
    assert run_export(load_config(FIXTURE_ARGS + ["--export_batch_size", "4", "--file_name", str(base)])) == 0
    return str(base) + ".mindir"


def with_sidecar(tiny_mindir, folder, change):
    """A copy of the tiny MINDIR in ``folder`` whose sidecar is ``change(record)``."""
    path = str(folder / "model.mindir")
    shutil.copyfile(tiny_mindir, path)
    with open(tiny_mindir + ".json", encoding="utf-8") as f:
        record = json.load(f)
    change(record)
    with open(path + ".json", "w", encoding="utf-8") as f:
        json.dump(record, f)
    return path


def test_export_writes_a_versioned_sidecar_with_what_inference_needs(tiny_mindir):
    record = read_sidecar(tiny_mindir)
    assert record["format_version"] == FORMAT_VERSION == "1.0"
    assert record["backbone"] == "sphere4" and record["image_size"] == [40, 32] and record["embedding_size"] == 16
    assert record["fusion"] == "concat" and record["input_shape"] == [4, 3, 40, 32]


def test_from_export_gives_the_config_path_embeddings(tiny_mindir):
    faces = np.random.default_rng(0).integers(0, 256, (5, 40, 32, 3), dtype=np.uint8)
    exported = Predictor.from_export(tiny_mindir)
    assert exported.cfg.config_path is None and exported.image_size == (40, 32) and exported.cfg.fusion == "concat"
    expected = Predictor(load_config(FIXTURE_ARGS)).embed_prepared(faces)  # the checkpoint, by its config
    np.testing.assert_allclose(exported.embed_prepared(faces), expected, atol=1e-5)
    np.testing.assert_allclose(
        Predictor(load_config(FIXTURE_ARGS), tiny_mindir).embed_prepared(faces), expected, atol=1e-5
    )
    summed = Predictor.from_export(tiny_mindir, settings=["--fusion=sum"])  # a given key beats the sidecar
    assert summed.cfg.fusion == "sum" and summed.embed_prepared(faces).shape == (5, 16)


def test_an_old_sidecar_without_version_is_read_as_version_1(tiny_mindir, tmp_path):
    def old(record):
        del record["format_version"], record["fusion"]

    predictor = Predictor.from_export(with_sidecar(tiny_mindir, tmp_path, old))
    assert predictor.image_size == (40, 32) and predictor.cfg.fusion == "concat"


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda r: r.update(format_version="2.0"), "field 'format_version' is 2.0, newer than this package reads"),
        (lambda r: r.pop("embedding_size"), "field 'embedding_size' is missing"),
        (lambda r: r.update(mean=0.0), "field 'mean' is 0.0; this package feeds models 127.5"),
        (lambda r: r.update(format_version="one"), "field 'format_version' is 'one', not 'MAJOR.MINOR'"),
    ],
)
def test_an_unusable_sidecar_is_one_line_naming_file_and_field(tiny_mindir, tmp_path, capsys, change, words):
    model = with_sidecar(tiny_mindir, tmp_path, change)
    with pytest.raises(SidecarError, match=words):
        Predictor.from_export(model)
    assert infer_cli.cli(["a.jpg", "b.jpg", "--ckpt_file", model]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {model}.json: {words}") and err.count("\n") == 1 and "Traceback" not in err


def test_a_mindir_without_sidecar_or_config_is_a_message(tiny_mindir, tmp_path, capsys):
    model = str(tmp_path / "bare.mindir")
    shutil.copyfile(tiny_mindir, model)
    assert infer_cli.cli(["a.jpg", "b.jpg", "--ckpt_file", model]) == 1
    assert capsys.readouterr().err.startswith(f"error: {model}.json: not found; an exported model runs without")


def test_infer_compares_two_photos_with_a_mindir_and_no_config(tiny_mindir, weights):
    if not os.path.isdir(LFW):
        pytest.skip(f"the shared data folder ({os.path.abspath(LFW)}) is absent")
    a, b = (os.path.join(LFW, "images_150", "Aaron_Peirsol", f"Aaron_Peirsol_000{n}.jpg") for n in (1, 2))
    done = subprocess.run(
        [sys.executable, "infer.py", a, b, "--ckpt_file", tiny_mindir],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "FACEREC_MTCNN_WEIGHTS": weights},
    )
    assert done.returncode == 0, done.stderr
    assert "Ascend" not in done.stderr + done.stdout and "device CPU PYNATIVE" in done.stdout
    assert any(line.startswith("cosine=") for line in done.stdout.splitlines())


def test_infer_imports_only_what_a_1_to_1_call_needs():
    """Quick to start: infer.py imports neither eval's scoring (scikit-learn), scikit-image (alignment has its own
    similarity) nor faiss (built for large galleries only)."""
    heavy = ("sklearn", "matplotlib", "skimage", "faiss")
    code = f"import sys, infer; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
