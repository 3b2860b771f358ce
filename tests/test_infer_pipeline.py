"""The deployment chain preprocess.py -> harness -> postprocess.py, and scripts/run_infer_310.sh, on real LFW pairs
(a 40-pair View 1 subset from ../shared) with the tiny sphere4 network of tests/fixtures/lite/.

The reference is eval.py's own path: the checkpoint's network embedding the aligned images and their mirror images
(src/eval), scored by src/eval. The chain must give the same embeddings and the same 10-fold accuracy, with
MindSpore's MINDIR runner (tools/mindir_infer.py) and with the C++ harness on the fixture's Lite model. The run
of the whole script with both backends (seven Python processes importing MindSpore) is marked slow.
"""

import json
import os
import re
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from deploy_helpers import LFW, SCRIPT, SHARED, run_script, write_subset
from lite_helpers import FIXTURE, FIXTURE_ARGS

import postprocess
import preprocess
from src.data.image_io import to_input
from src.deploy.bin_layout import BinLayoutError, read_arrays, read_index
from src.deploy.export_model import run_export
from src.deploy.lite_harness import run_face_infer
from src.deploy.pair_record import read_pair_record
from src.eval.embed import embed_images, fuse
from src.eval.mindir_info import MindirFormatError, read_mindir_info
from src.eval.pair_images import load_pair_images
from src.eval.pairs import read_pairs
from src.eval.report import accuracy_line
from src.eval.targets import targets_from_config
from src.eval.verify import verification_metrics
from src.model_utils.config import DEFAULT_CONFIG, flow, load_config
from src.network import build_backbone_from_config
from src.network.weights import load_backbone_weights

TINY = FIXTURE_ARGS
PER_CLASS = 20  # same and different pairs taken from the head of pairsDevTest.txt: 40 pairs, 10 folds of 4


@pytest.fixture(scope="module")
def lfw_subset(tmp_path_factory):
    if not os.path.isdir(SHARED):
        pytest.skip(f"the shared data folder ../shared ({os.path.abspath(SHARED)}) is absent")
    return write_subset(tmp_path_factory.mktemp("pairs") / "pairs_subset.txt", PER_CLASS)


def subset_args(pairs):
    target = {
        "pairs": pairs,
        "root": os.path.join(LFW, "images_150"),
        "landmarks": os.path.join(LFW, "lfw_landmark_150.txt"),
    }
    return ["--val_targets", flow([target])]


@pytest.fixture(scope="module")
def prepared(lfw_subset, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("prepared"))
    preprocess.main(["--image_size", "[40, 32]"] + subset_args(lfw_subset) + ["--infer_input_dir", folder])
    return folder


@pytest.fixture(scope="module")
def reference(lfw_subset):
    """eval.py's path on the checkpoint: (PairSet, aligned images, embeddings, mirror embeddings, metrics)."""
    cfg = load_config(TINY + subset_args(lfw_subset))
    (target,) = targets_from_config(cfg)
    pair_set = read_pairs(target.pairs, target.root)
    images = np.stack(load_pair_images(pair_set, cfg.image_size, target.landmarks))
    net = load_backbone_weights(build_backbone_from_config(cfg), cfg.ckpt_file)
    net.set_train(False)
    orig, flip = embed_images(net, images, 8)
    metrics, _ = verification_metrics(fuse(orig, flip, "concat"), pair_set)
    return pair_set, images, orig, flip, metrics


@pytest.fixture(scope="module")
def tiny_mindir(tmp_path_factory):
    """export.py's MINDIR of the fixture checkpoint, fixed batch 4, with its sidecar."""
    base = tmp_path_factory.mktemp("mindir") / "tiny_b4"
    run_export(
        load_config(TINY + ["--export_batch_size", "4", "--file_name", str(base)], default_config=DEFAULT_CONFIG)
    )
    return str(base) + ".mindir"


# ---------------------------------------------------------------- file layout and model description


def test_index_rules(tmp_path):
    index = tmp_path / "index.txt"
    index.write_text("# comment\n\n  a.bin \nsub/b.bin\n")
    assert read_index(str(index)) == ["a.bin", "sub/b.bin"]
    for bad in ("../x.bin", "/abs.bin", "sub/../../x.bin"):
        index.write_text(f"a.bin\n{bad}\n")
        with pytest.raises(BinLayoutError, match=f"index.txt:2: '{re.escape(bad)}' must be a relative path"):
            read_index(str(index))
    index.write_text("# nothing\n")
    with pytest.raises(BinLayoutError, match="lists no inputs"):
        read_index(str(index))


def test_outputs_of_different_sizes_are_refused(tmp_path):
    np.zeros(4, np.float32).tofile(tmp_path / "a.bin")
    np.zeros(5, np.float32).tofile(tmp_path / "b.bin")
    assert read_arrays(str(tmp_path), ["a.bin"]).shape == (1, 4)
    with pytest.raises(BinLayoutError, match=r"b.bin has 5 float32 values, expected 4"):
        read_arrays(str(tmp_path), ["a.bin", "b.bin"])
    with pytest.raises(BinLayoutError, match="file not found"):
        read_arrays(str(tmp_path), ["a.bin", "missing.bin"])


def test_mindir_info_tells_mindspore_from_lite_models(tiny_mindir, tmp_path):
    lite = read_mindir_info(os.path.join(FIXTURE, "sphere4_tiny_b4.mindir"))
    assert (lite.producer, lite.version, lite.mindir_version) == ("MindSpore", "2.0.0", 1)
    own = read_mindir_info(tiny_mindir)
    assert (own.version, own.mindir_version) == (ms.__version__, 3)
    (tmp_path / "x.mindir").write_bytes(b"not a protobuf \xff\xff\xff")
    with pytest.raises(MindirFormatError, match="x.mindir is not a MINDIR file"):
        read_mindir_info(str(tmp_path / "x.mindir"))


# ---------------------------------------------------------------- preprocess / postprocess against eval.py


def test_preprocess_writes_eval_inputs_in_the_harness_layout(prepared, reference):
    pair_set, images, _, _, _ = reference
    record, stored = read_pair_record(prepared)
    count = len(pair_set.relpaths)
    assert record["images"] == pair_set.relpaths
    for key in ("first", "second", "issame", "folds"):
        assert np.array_equal(getattr(stored, key), getattr(pair_set, key)), key
    names = read_index(os.path.join(prepared, "index.txt"))
    assert names == [f"orig/{i:06d}.bin" for i in range(count)] + [f"flip/{i:06d}.bin" for i in range(count)]
    assert os.path.getsize(os.path.join(prepared, names[0])) == 3 * 40 * 32 * 4
    inputs = read_arrays(prepared, names).reshape(2, count, 3, 40, 32)
    assert np.array_equal(inputs[0], to_input(images))
    assert np.array_equal(inputs[1], to_input(images[:, :, ::-1]))  # the mirror image eval.py embeds


def test_python_backend_and_postprocess_reproduce_eval(prepared, reference, tiny_mindir, tmp_path, capsys):
    from tools.mindir_infer import main as mindir_infer

    _, _, orig, flip, metrics = reference
    assert mindir_infer(["--model_path", tiny_mindir, "--input_dir", prepared, "--output_dir", str(tmp_path)]) == 0
    assert re.search(rf"^Summary: {2 * len(orig)} images, embedding 16, batch 4, ", capsys.readouterr().out, re.M)
    record, _ = read_pair_record(prepared)
    assert np.abs(read_arrays(str(tmp_path), record["orig"]) - orig).max() <= 1e-5
    assert np.abs(read_arrays(str(tmp_path), record["flip"]) - flip).max() <= 1e-5

    result = postprocess.postprocess(
        load_config(["--infer_input_dir", prepared, "--infer_result_dir", str(tmp_path), "--fusion", "concat"])
    )
    assert result["metrics"]["kfold"]["accuracy"] == metrics["kfold"]["accuracy"]
    assert result["metrics"]["kfold"]["fold_accuracies"] == metrics["kfold"]["fold_accuracies"]
    assert accuracy_line(metrics) in capsys.readouterr().out
    with open(tmp_path / "eval_result.json", encoding="utf-8") as f:
        assert json.load(f)["metrics"]["kfold"]["threshold"] == metrics["kfold"]["threshold"]


def test_cpp_harness_and_postprocess_reproduce_eval(prepared, reference, face_infer, tmp_path, capsys):
    """The fixture's Lite model (the same checkpoint through ONNX and tools/to_lite.py) on preprocess.py's files."""
    _, _, orig, flip, metrics = reference
    result = run_face_infer(face_infer, os.path.join(FIXTURE, "sphere4_tiny_b4.mindir"), prepared, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    record, _ = read_pair_record(prepared)
    assert np.abs(read_arrays(str(tmp_path), record["orig"]) - orig).max() <= 1e-4
    assert np.abs(read_arrays(str(tmp_path), record["flip"]) - flip).max() <= 1e-4
    got = postprocess.postprocess(load_config(["--infer_input_dir", prepared, "--infer_result_dir", str(tmp_path)]))
    assert got["metrics"]["kfold"]["fold_accuracies"] == metrics["kfold"]["fold_accuracies"]
    assert accuracy_line(metrics) in capsys.readouterr().out


def test_preprocess_checks_the_sidecar(tmp_path, tiny_mindir, lfw_subset):
    with open(tiny_mindir + ".json", encoding="utf-8") as f:
        record = json.load(f)
    assert preprocess.input_size_from_sidecar(tiny_mindir + ".json") == [40, 32]
    record["channel_order"] = "BGR"
    (tmp_path / "bgr.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="the model wants channel_order='BGR'; preprocess.py writes 'RGB'"):
        preprocess.main(
            subset_args(lfw_subset)
            + ["--infer_input_dir", str(tmp_path / "in"), "--model_info", str(tmp_path / "bgr.json")]
        )


# ---------------------------------------------------------------- scripts/run_infer_310.sh


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("m.mindir", "data"),
        ("m", "d", "maybe", "CPU", "0"),
        ("m", "d", "y", "TPU", "0"),
        ("m", "d", "y", "CPU", "x"),
        ("m", "d", "y", "CPU", "0", "java"),
        ("m", "d", "y", "CPU", "0", "--backend"),
    ],
)
def test_script_prints_usage_on_bad_arguments(tmp_path, args):
    result = run_script(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "Usage: bash scripts/run_infer_310.sh [MINDIR_PATH] [DATASET_PATH] [NEED_PREPROCESS] [DEVICE_TYPE] "
        "[DEVICE_ID] [BACKEND]" in result.stderr
    )


def test_script_explains_a_missing_harness(tmp_path, tiny_mindir, prepared):
    env = {k: v for k, v in os.environ.items() if k not in ("MINDSPORE_LITE_HOME", "MS_LITE_HOME")}
    work = tmp_path / "work"
    os.makedirs(work)
    os.symlink(prepared, work / "input")
    result = subprocess.run(
        ["bash", SCRIPT, tiny_mindir, LFW, "n", "CPU", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        check=False,
        env=dict(env, PYTHON=sys.executable, INFER_WORK_DIR=str(work), FACE_INFER=str(tmp_path / "none")),
    )
    assert result.returncode == 1
    assert "MindSpore Lite 2.0 (the PyPI wheel tools/fetch_lite.sh unpacks) reads MindIR version <= 1" in result.stderr
    assert "is not built and MINDSPORE_LITE_HOME is not set" in result.stderr
    assert "fetch_lite.sh" in result.stderr


@pytest.mark.slow
def test_script_gives_eval_accuracy_with_both_backends(tmp_path, lfw_subset, tiny_mindir, reference, face_infer):
    """Python backend (export.py's MINDIR, NEED_PREPROCESS y), then the C++ harness on the fixture's Lite model of
    the same checkpoint (n: the same inputs), started from another directory."""
    _, _, orig, flip, metrics = reference
    work = tmp_path / "work"
    config = tmp_path / "tiny.yaml"
    config.write_text("image_size: [40, 32]\n")
    env = {"INFER_WORK_DIR": str(work), "PAIRS": lfw_subset, "FACE_INFER": face_infer, "CONFIG_PATH": str(config)}
    python = run_script(tiny_mindir, LFW, "y", "CPU", "0", "--backend", "python", cwd=tmp_path, **env)
    assert python.returncode == 0, python.stdout + python.stderr[-3000:]
    cpp = run_script(os.path.join(FIXTURE, "sphere4_tiny_b4.mindir"), LFW, "n", "CPU", "0", cwd=tmp_path, **env)
    assert cpp.returncode == 0, cpp.stdout + cpp.stderr[-3000:]
    assert "no " in cpp.stderr and "inputs use the config's image_size" in cpp.stderr  # the fixture has no sidecar

    expected = accuracy_line(metrics)
    for result in (python, cpp):
        assert re.search(r"^Summary: \d+ images, embedding 16, batch 4, .* images/s", result.stdout, re.M)
        assert expected in result.stdout, result.stdout
    record, _ = read_pair_record(str(work / "input"))
    for backend in ("python", "cpp"):
        got_orig = read_arrays(str(work / f"result_{backend}"), record["orig"])
        got_flip = read_arrays(str(work / f"result_{backend}"), record["flip"])
        assert np.abs(got_orig - orig).max() <= 1e-4 and np.abs(got_flip - flip).max() <= 1e-4, backend
