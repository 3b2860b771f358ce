"""tools/to_lite.py (src/deploy/onnx_graph.py, lite_convert.py): the ONNX fixes for MindSpore Lite 2.0 and the
conversion under Python 3.7.

The graphs are built here the way ``mindspore.onnx.export`` writes them (opset 11, PReLU slope through an
Unsqueeze, a dynamic batch as ``dim_value: -1``): Conv -> PRelu -> Flatten -> Gemm.
"""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from deploy_helpers import run_script
from onnx import TensorProto, helper, numpy_helper

from src.deploy import lite_convert
from src.deploy.bin_layout import read_arrays, write_arrays
from src.deploy.lite_convert import ConversionError, find_lite_home
from src.deploy.lite_harness import run_face_infer
from src.deploy.onnx_graph import fix_onnx
from tools import to_lite

SHAPE = (3, 6, 5)
CHANNELS, EMBEDDING = 4, 8


def make_model(batch, opset=11):
    """Conv(3->4) -> PRelu(slope via Unsqueeze) -> Flatten -> Gemm(8); batch -1: dynamic, as MindSpore writes it."""
    rng = np.random.default_rng(7)
    c, h, w = SHAPE
    initializers = [
        numpy_helper.from_array(rng.normal(0, 0.5, (CHANNELS, c, 3, 3)).astype(np.float32), "conv.weight"),
        numpy_helper.from_array(rng.normal(0, 0.1, CHANNELS).astype(np.float32), "conv.bias"),
        numpy_helper.from_array(rng.uniform(0.05, 0.5, CHANNELS).astype(np.float32), "prelu.w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (EMBEDDING, CHANNELS * h * w)).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(rng.normal(0, 0.1, EMBEDDING).astype(np.float32), "fc.bias"),
    ]
    if opset >= 13:
        initializers.append(numpy_helper.from_array(np.array([1, 2], np.int64), "axes"))
        unsqueeze = helper.make_node("Unsqueeze", ["prelu.w", "axes"], ["slope"])
    else:
        unsqueeze = helper.make_node("Unsqueeze", ["prelu.w"], ["slope"], axes=[1, 2])
    nodes = [
        # All attributes spelt out as MindSpore writes them: Lite 2.0 fails on a Conv without strides/dilations.
        helper.make_node(
            "Conv",
            ["x", "conv.weight", "conv.bias"],
            ["conv"],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[1, 1],
            dilations=[1, 1],
            group=1,
        ),
        unsqueeze,
        helper.make_node("PRelu", ["conv", "slope"], ["act"]),
        helper.make_node("Flatten", ["act"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, EMBEDDING])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    return model


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + SHAPE).astype(np.float32)


@pytest.mark.parametrize("opset", [11, 13])
def test_fixed_batch_folds_slope_unsqueeze_and_keeps_prelu(tmp_path, opset):
    onnx.save(make_model(2, opset), tmp_path / "model.onnx")
    assert fix_onnx(str(tmp_path / "model.onnx"), str(tmp_path / "fixed.onnx")) == (1, 0)

    fixed = onnx.load(tmp_path / "fixed.onnx")
    assert [n.op_type for n in fixed.graph.node] == ["Conv", "PRelu", "Flatten", "Gemm"]
    initializers = {i.name: numpy_helper.to_array(i) for i in fixed.graph.initializer}
    assert initializers["slope"].shape == (CHANNELS, 1, 1)
    assert "prelu.w" not in initializers and "axes" not in initializers
    x = images(2)
    np.testing.assert_allclose(
        run_onnx(tmp_path / "fixed.onnx", x), run_onnx(tmp_path / "model.onnx", x), rtol=0, atol=1e-6
    )


def test_dynamic_batch_marks_dim_and_decomposes_prelu(tmp_path):
    onnx.save(make_model(2), tmp_path / "static.onnx")
    fix_onnx(str(tmp_path / "static.onnx"), str(tmp_path / "static_fixed.onnx"))
    onnx.save(make_model(-1), tmp_path / "dynamic.onnx")
    assert fix_onnx(str(tmp_path / "dynamic.onnx"), str(tmp_path / "dynamic_fixed.onnx")) == (1, 1)

    fixed = onnx.load(tmp_path / "dynamic_fixed.onnx")
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert fixed.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    op_types = [n.op_type for n in fixed.graph.node]
    assert "PRelu" not in op_types and "Unsqueeze" not in op_types
    # Same weights: the decomposed dynamic model gives the PRelu model's outputs at any batch.
    x = images(2)
    np.testing.assert_allclose(
        run_onnx(tmp_path / "dynamic_fixed.onnx", x), run_onnx(tmp_path / "static_fixed.onnx", x), rtol=0, atol=1e-6
    )
    assert run_onnx(tmp_path / "dynamic_fixed.onnx", images(5)).shape == (5, EMBEDDING)


def test_without_python37_it_says_what_is_needed(tmp_path, monkeypatch, capsys):
    lite_home = tmp_path / "mindspore_lite"
    lite_home.mkdir()
    (lite_home / "converter.py").write_text("")
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.7 on PATH
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))  # and no pyenv versions
    onnx.save(make_model(2), tmp_path / "model.onnx")

    assert (
        to_lite.main([str(tmp_path / "model.onnx"), str(tmp_path / "out.mindir"), "--lite-home", str(lite_home)]) == 1
    )
    message = capsys.readouterr().err
    assert "needs a Python 3.7 interpreter" in message and "--python37" in message
    assert not (tmp_path / "out.mindir").exists()


def test_ascend_refuses_a_dynamic_batch_and_converts_a_fixed_one_ascend_oriented(tmp_path, monkeypatch, capsys):
    onnx.save(make_model(-1), tmp_path / "dynamic.onnx")
    args = [str(tmp_path / "dynamic.onnx"), str(tmp_path / "out.mindir"), "--device_target", "Ascend"]
    assert to_lite.main(args) == 1
    message = capsys.readouterr().err
    assert "has a dynamic batch, which Ascend inference (the 310) does not run" in message
    assert "--export_batch_size N, without --dynamic_batch" in message
    calls = []
    monkeypatch.setattr(lite_convert, "find_lite_home", lambda explicit: str(tmp_path))
    monkeypatch.setattr(lite_convert, "find_python37", lambda explicit: "python3.7")
    monkeypatch.setattr(lite_convert, "ensure_numpy", lambda *args: None)
    monkeypatch.setattr(lite_convert, "convert_with_lite", lambda *args: calls.append(args[-1]))
    onnx.save(make_model(2), tmp_path / "fixed.onnx")
    for device in ("Ascend", "CPU"):
        lite_convert.to_lite(str(tmp_path / "fixed.onnx"), str(tmp_path / "out.mindir"), device_target=device)
    assert calls == ["ascend_oriented", "general"]


def test_without_lite_home_it_says_what_is_needed(tmp_path, monkeypatch):
    monkeypatch.delenv("MINDSPORE_LITE_HOME", raising=False)
    monkeypatch.delenv("MS_LITE_HOME", raising=False)
    with pytest.raises(ConversionError, match="MINDSPORE_LITE_HOME.*fetch_lite.sh"):
        find_lite_home()


def test_converted_model_runs_in_the_harness(tmp_path, lite_home, face_infer):
    try:
        python37 = lite_convert.find_python37()
    except ConversionError as error:
        pytest.skip(str(error))
    onnx.save(make_model(2), tmp_path / "model.onnx")
    assert lite_convert.to_lite(
        str(tmp_path / "model.onnx"), str(tmp_path / "model.mindir"), lite_home=lite_home, python37=python37
    ) == (1, 0)
    assert oct(os.stat(tmp_path / "model.mindir").st_mode & 0o777) == "0o644"

    x = images(3)  # a batch of 2, then 1 padded to 2
    names = ["a.bin", "b.bin", "c.bin"]
    write_arrays(str(tmp_path / "in"), names, x, "generated by the tests")
    result = run_face_infer(face_infer, tmp_path / "model.mindir", tmp_path / "in", tmp_path / "out")
    assert result.returncode == 0, result.stderr[-4000:]
    got = read_arrays(str(tmp_path / "out"), names)
    padded = np.concatenate([x[2:], np.zeros_like(x[2:])])
    expected = np.concatenate([run_onnx(tmp_path / "model.onnx", x[:2]), run_onnx(tmp_path / "model.onnx", padded)[:1]])
    assert float(np.abs(got - expected).max()) <= 1e-4


def test_export_sidecar_follows_the_lite_model(tmp_path):
    onnx_path, lite_path = str(tmp_path / "m.onnx"), str(tmp_path / "m_lite.mindir")
    lite_convert.copy_sidecar(onnx_path, lite_path)
    assert not os.path.exists(lite_path + ".json")  # no sidecar, nothing to carry over
    record = {"input_shape": [64, 3, 112, 96], "mean": 127.5, "file_format": "ONNX", "parity": {"passed": True}}
    with open(onnx_path + ".json", "w", encoding="utf-8") as f:
        json.dump(record, f)
    lite_convert.copy_sidecar(onnx_path, lite_path)
    with open(lite_path + ".json", encoding="utf-8") as f:
        carried = json.load(f)
    assert carried["input_shape"] == [64, 3, 112, 96] and carried["mean"] == 127.5
    assert carried["file_format"] == "MINDIR_LITE" and carried["converted_from"] == "m.onnx"
    assert "parity" not in carried  # measured on the ONNX file


def test_run_infer_310_refuses_a_dynamic_batch_on_ascend(tmp_path):
    model = tmp_path / "model.mindir"
    model.write_bytes(b"not read: the sidecar decides")
    (tmp_path / "model.mindir.json").write_text(json.dumps({"input_shape": [None, 3, 112, 96], "dynamic_batch": True}))
    (tmp_path / "lfw").mkdir()
    result = run_script(model, tmp_path / "lfw", "y", "Ascend", 0, cwd=tmp_path)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "has a dynamic batch" in message and "which Ascend inference (the 310) does not run" in message
    assert "export.py --export_batch_size N, without --dynamic_batch" in message
    on_cpu = run_script(model, tmp_path / "lfw", "y", "CPU", 0, cwd=tmp_path)
    assert "dynamic batch" not in on_cpu.stderr  # CPU goes on (and stops later on this fake file)
