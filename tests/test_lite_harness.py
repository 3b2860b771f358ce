"""The C++ MindSpore Lite harness (ascend310_infer/) against MindSpore on the tiny fixture model.

The fixture (tests/fixtures/lite/, made by tools/make_lite_fixture.py) holds a sphere4 checkpoint and the
same network converted to Lite MINDIRs with a fixed batch of 4 and a dynamic batch. Ten random inputs go
through the harness; its embeddings must match MindSpore's from the checkpoint.
"""

import json
import os
import re
import subprocess

import numpy as np
import pytest
from lite_helpers import read_outputs, run_face_infer, write_inputs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "lite")
NUM_IMAGES = 10
SUMMARY = re.compile(
    r"^Summary: (\d+) images, embedding (\d+), batch (\d+), (\d+) batches, "
    r"predict [\d.]+ ms, ([\d.]+) images/s",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def fixture_meta():
    with open(os.path.join(FIXTURE, "fixture.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def images(fixture_meta):
    height, width = fixture_meta["image_size"]
    return np.random.default_rng(0).standard_normal((NUM_IMAGES, 3, height, width)).astype(np.float32)


@pytest.fixture(scope="module")
def mindspore_embeddings(fixture_meta, images):
    import mindspore as ms

    from src.network import build_backbone

    net = build_backbone(
        fixture_meta["backbone"],
        embedding_size=fixture_meta["embedding_size"],
        image_size=tuple(fixture_meta["image_size"]),
        width=fixture_meta["width"],
    )
    not_loaded = ms.load_param_into_net(net, ms.load_checkpoint(os.path.join(FIXTURE, fixture_meta["checkpoint"])))
    assert not any(not_loaded), not_loaded
    net.set_train(False)
    return net(ms.Tensor(images)).asnumpy()


@pytest.fixture(scope="module")
def input_dir(tmp_path_factory, images):
    folder = tmp_path_factory.mktemp("lite_inputs")
    names = [f"img{i:02d}.bin" for i in range(NUM_IMAGES - 1)] + ["nested/img09.bin"]
    write_inputs(str(folder), names, images)
    return folder, names


@pytest.mark.parametrize(
    "model, extra, batch, batches",
    [
        ("b4", [], 4, 3),  # fixed batch: 4 + 4 + 2 padded to 4
        ("dynamic", ["--batch_size", "4"], 4, 3),  # dynamic: resized to 4, then to 2
        ("dynamic", ["--batch_size", "3"], 3, 4),  # 3 + 3 + 3 + 1
        ("dynamic", ["--batch_size", "16"], 16, 1),  # one batch, resized to the 10 images
    ],
)
def test_harness_matches_mindspore(
    face_infer, fixture_meta, input_dir, mindspore_embeddings, tmp_path, model, extra, batch, batches
):
    folder, names = input_dir
    model_path = os.path.join(FIXTURE, fixture_meta["models"][model]["file"])
    result = run_face_infer(face_infer, model_path, folder, tmp_path / "out", *extra)
    assert result.returncode == 0, result.stderr[-4000:]

    summary = SUMMARY.search(result.stdout)
    assert summary, f"no summary line with images/s in:\n{result.stdout}"
    assert [int(v) for v in summary.groups()[:4]] == [NUM_IMAGES, fixture_meta["embedding_size"], batch, batches]
    assert float(summary.group(5)) > 0

    got = read_outputs(tmp_path / "out", names)
    assert got.shape == mindspore_embeddings.shape
    assert float(np.abs(got - mindspore_embeddings).max()) <= 1e-4


def test_harness_rejects_input_of_wrong_size(face_infer, fixture_meta, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "short.bin").write_bytes(np.zeros(25, np.float32).tobytes())
    (tmp_path / "in" / "index.txt").write_text("short.bin\n")
    model_path = os.path.join(FIXTURE, fixture_meta["models"]["b4"]["file"])
    result = run_face_infer(face_infer, model_path, tmp_path / "in", tmp_path / "out")
    height, width = fixture_meta["image_size"]
    assert result.returncode == 1
    assert f"short.bin has 100 bytes, the model needs {3 * height * width * 4}" in result.stderr


def _cmake_configure(tmp_path, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in ("MINDSPORE_LITE_HOME", "MS_LITE_HOME")}
    env.update(env_overrides)
    result = subprocess.run(
        ["cmake", "-S", os.path.join(REPO, "ascend310_infer"), "-B", str(tmp_path / "build")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def test_cmake_without_lite_home_stops_with_message(tmp_path):
    returncode, output = _cmake_configure(tmp_path)
    assert returncode != 0
    assert "MindSpore Lite not found: set MINDSPORE_LITE_HOME (or MS_LITE_HOME)" in output
    assert "tools/fetch_lite.sh" in output


def test_cmake_rejects_folder_without_lite(tmp_path):
    (tmp_path / "empty").mkdir()
    returncode, output = _cmake_configure(tmp_path, MINDSPORE_LITE_HOME=str(tmp_path / "empty"))
    assert returncode != 0
    assert "is not a MindSpore Lite folder" in output
