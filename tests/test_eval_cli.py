"""eval.py, the Predictor, infer.py and the eval scripts end to end, on the digits demo's held-out pairs with a
tiny network: one code path for a checkpoint, a folder of checkpoints and a MINDIR; the LFW pairs file, a
``label path1 path2`` list and a ``.bin`` of the same pairs give the same metrics."""

import csv
import json
import os
import pickle
import re
import subprocess
import sys

import cv2
import mindspore as ms
import numpy as np
import pytest
from tiny_training import TINY_EVAL, digits_targets, eval_args

from src.data.alignment import template_for
from src.data.digits import prepare_digits
from src.data.landmarks import LandmarkFormatError
from src.deploy.export_model import run_export
from src.eval.evaluation import evaluate
from src.eval.pairs import read_pairs
from src.eval.protocol import kfold_accuracy
from src.infer import command as infer_cli
from src.infer.predictor import Predictor
from src.model_utils.config import load_config
from src.network import build_backbone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = TINY_EVAL


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return prepare_digits(str(tmp_path_factory.mktemp("digits")), (32, 32), pairs_per_fold=8)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """net-2.ckpt and net-10.ckpt: the tiny backbone with two different random weight sets."""
    folder = tmp_path_factory.mktemp("ckpt")
    for seed in (2, 10):
        net = build_backbone("sphere4", embedding_size=8, image_size=(32, 32), width=0.125)
        rng = np.random.default_rng(seed)
        for param in net.trainable_params():
            param.set_data(ms.Tensor(rng.normal(0, 0.3, param.shape).astype(np.float32)))
        ms.save_checkpoint(net, str(folder / f"net-{seed}.ckpt"))
    return folder


def run_eval(digits, model, output, *extra):
    return evaluate(load_config(TINY + eval_args(digits, model, output, *extra)))


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def folder_result(digits, checkpoints, tmp_path_factory):
    output = tmp_path_factory.mktemp("out") / "lfw.json"
    run_eval(digits, checkpoints, output)
    with open(output, encoding="utf-8") as f:
        return json.load(f), output


def test_folder_evaluation_writes_every_output(folder_result, digits, checkpoints):
    record, output = folder_result
    models = list(record["models"])
    assert [os.path.basename(m) for m in models] == ["net-2.ckpt", "net-10.ckpt"]  # natural order
    accuracies = {m: record["models"][m]["metrics"]["concat"]["kfold"]["accuracy"] for m in models}
    assert record["best"] == max(accuracies, key=accuracies.get)
    assert record["pair_set"]["pairs"] == 160 and record["fusion"] == "concat"
    pair_set = read_pairs(digits["eval_pairs"], ext=".png")
    for model in models:
        files = record["models"][model]["files"]
        rows = read_csv(files["scores_csv"])
        assert len(rows) == 160 and rows[0]["image1"] == pair_set.relpaths[pair_set.first[0]]
        concat = np.array([float(r["score_concat"]) for r in rows])
        # The 10-fold accuracy recomputed from the CSV's scores is the JSON's.
        recomputed = kfold_accuracy(concat, pair_set.issame, pair_set.folds)["accuracy"]
        assert recomputed == pytest.approx(accuracies[model])
        for key in ("roc_png", "histogram_png"):
            with open(files[key], "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.dirname(files["roc_png"]) == os.path.dirname(str(output))


def test_folder_evaluation_prints_lines_and_table(digits, checkpoints, tmp_path, capsys):
    run_eval(digits, checkpoints, tmp_path / "again.json", "--eval_plots=false")
    out = capsys.readouterr().out
    with open(tmp_path / "again.json", encoding="utf-8") as f:
        record = json.load(f)
    lfwacc = [line for line in out.splitlines() if line.startswith("LFWACC=")]
    assert len(lfwacc) == 2 and "model=net-2.ckpt fusion=concat" in lfwacc[0]
    best = os.path.basename(record["best"])
    marked = [line for line in out.splitlines() if line.startswith("*")]
    assert len(marked) == 1 and best in marked[0]
    accuracy = record["models"][record["best"]]["metrics"]["concat"]["kfold"]["accuracy"]
    assert f"{accuracy:.4f}" in marked[0]
    assert "files" not in record["models"][record["best"]]


@pytest.fixture(scope="module")
def same_pairs_other_formats(digits, tmp_path_factory):
    """The digits pairs as a 'label path1 path2' list and as an insightface .bin (the PNG files' bytes)."""
    folder = tmp_path_factory.mktemp("formats")
    pair_set = read_pairs(digits["eval_pairs"], digits["eval_root"], ".png")
    lines, encoded = [], []
    for a, b, same in zip(pair_set.first, pair_set.second, pair_set.issame):
        lines.append(f"{int(same)} {pair_set.relpaths[a]} {pair_set.relpaths[b]}")
        for index in (a, b):
            with open(pair_set.paths[index], "rb") as f:
                encoded.append(f.read())
    (folder / "list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(folder / "digits.bin", "wb") as f:
        pickle.dump((encoded, pair_set.issame.tolist()), f)
    return folder


@pytest.mark.parametrize("name", ["list.txt", "digits.bin"])
def test_list_and_bin_give_the_pairs_file_metrics(
    folder_result, digits, checkpoints, same_pairs_other_formats, tmp_path, name
):
    record, _ = folder_result
    model = str(checkpoints / "net-2.ckpt")
    run_eval(
        dict(digits, eval_pairs=str(same_pairs_other_formats / name)), model, tmp_path / "r.json", "--eval_plots=false"
    )
    with open(tmp_path / "r.json", encoding="utf-8") as f:
        other = json.load(f)["models"][model]["metrics"]
    expected = record["models"][model]["metrics"]
    for mode in ("orig", "concat", "sum"):
        assert other[mode]["kfold"]["fold_accuracies"] == expected[mode]["kfold"]["fold_accuracies"]
        assert other[mode]["roc"]["auc"] == pytest.approx(expected[mode]["roc"]["auc"], abs=1e-9)


def test_mindir_is_evaluated_like_its_checkpoint(folder_result, digits, checkpoints, tmp_path):
    record, _ = folder_result
    model = str(checkpoints / "net-10.ckpt")
    run_export(load_config(TINY + [f"--ckpt_file={model}", "--export_batch_size=7", f"--file_name={tmp_path / 'net'}"]))
    mindir = str(tmp_path / "net.mindir")
    run_eval(digits, mindir, tmp_path / "m.json", "--eval_plots=false")
    with open(tmp_path / "m.json", encoding="utf-8") as f:
        metrics = json.load(f)["models"][mindir]["metrics"]
    expected = record["models"][model]["metrics"]
    for mode in ("orig", "concat", "sum"):
        assert metrics[mode]["kfold"]["accuracy"] == pytest.approx(expected[mode]["kfold"]["accuracy"])
        assert metrics[mode]["roc"]["auc"] == pytest.approx(expected[mode]["roc"]["auc"], abs=1e-6)


def test_mean_subtraction_is_recorded(digits, checkpoints, tmp_path):
    run_eval(digits, checkpoints / "net-2.ckpt", tmp_path / "mean.json", "--eval_subtract_mean=true")
    with open(tmp_path / "mean.json", encoding="utf-8") as f:
        record = json.load(f)
    assert record["pair_set"]["subtract_mean"] is True
    rows = read_csv(next(iter(record["models"].values()))["files"]["scores_csv"])
    assert len(rows) == 160


def test_missing_keys_are_named(checkpoints):
    with pytest.raises(ValueError, match="config key 'val_targets' is empty"):
        evaluate(load_config(TINY + [f"--ckpt_file={checkpoints}"]))


# ---------------------------------------------------------------- predictor and infer.py


@pytest.fixture(scope="module")
def predictor(checkpoints):
    cfg = load_config(TINY + ["--fusion=concat"])
    return Predictor(cfg, str(checkpoints / "net-2.ckpt"))


def test_predictor_reproduces_the_eval_scores(predictor, folder_result, digits, checkpoints):
    record, _ = folder_result
    rows = read_csv(record["models"][str(checkpoints / "net-2.ckpt")]["files"]["scores_csv"])
    root = digits["eval_root"]
    for row in rows[:3]:
        a, b = os.path.join(root, row["image1"]), os.path.join(root, row["image2"])
        assert predictor.similarity(a, b) == pytest.approx(float(row["score_concat"]), abs=1e-5)
    features = predictor.embed([a, cv2.imread(b)[:, :, ::-1]])
    assert features.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    assert predictor.embed(a).shape == (1, 16)


def test_predictor_aligns_with_landmarks(predictor):
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    template = template_for((32, 32))
    # Landmarks at twice the 32x32 template: aligning keeps every second pixel of the 64x64 image.
    aligned = predictor.prepare(image, template * 2)
    np.testing.assert_allclose(aligned.astype(float), image[::2, ::2], atol=1)
    with pytest.raises(ValueError, match="2 images but 1 landmark sets"):
        predictor.embed([image, image], [template])


def printed(capsys):
    """What infer.py printed, without the log lines (``HH:MM:SS LEVEL ...``)."""
    return "".join(
        line
        for line in capsys.readouterr().out.splitlines(keepends=True)
        if not re.match(r"\d\d:\d\d:\d\d [A-Z]+ ", line)
    )


def test_infer_two_images(predictor, digits, checkpoints, capsys):
    root = digits["eval_root"]
    a, b = os.path.join(root, "digit7/digit7_0001.png"), os.path.join(root, "digit8/digit8_0001.png")
    expected = predictor.similarity(a, b)
    model = f"--ckpt_file={checkpoints / 'net-2.ckpt'}"
    infer_cli.main([a, b, model, "--aligned"] + TINY)
    assert printed(capsys).startswith(f"cosine={expected:.4f} (no same_threshold set")
    infer_cli.main([a, b, model, "--aligned", f"--same_threshold={expected - 0.01}"] + TINY)
    assert printed(capsys).startswith(f"cosine={expected:.4f} same (threshold")
    infer_cli.main([a, b, model, "--aligned", f"--same_threshold={expected + 0.01}"] + TINY)
    assert f"cosine={expected:.4f} different" in capsys.readouterr().out


def test_infer_aligns_with_a_landmark_file(predictor, digits, checkpoints, tmp_path, capsys):
    root = digits["eval_root"]
    a, b = os.path.join(root, "digit7/digit7_0002.png"), os.path.join(root, "digit9/digit9_0001.png")
    points_a, points_b = template_for((32, 32)) * 0.8 + 3, template_for((32, 32)) * 1.1 - 1
    landmarks = tmp_path / "landmarks.txt"
    landmarks.write_text(
        "".join(
            f"{name}\t" + "\t".join(f"{v:.4f}" for v in points.ravel()) + "\n"
            for name, points in (("digit7/digit7_0002.png", points_a), ("digit9/digit9_0001.png", points_b))
        )
    )
    expected = predictor.similarity(a, b, points_a, points_b)
    assert abs(expected - predictor.similarity(a, b)) > 1e-3  # the landmarks matter
    infer_cli.main([a, b, f"--ckpt_file={checkpoints / 'net-2.ckpt'}", "--landmarks", str(landmarks)] + TINY)
    assert printed(capsys).startswith(f"cosine={expected:.4f}")
    with pytest.raises(LandmarkFormatError, match=f"{landmarks}: no landmarks for image .*digit8_0001.png"):
        infer_cli.main(
            [
                a,
                os.path.join(root, "digit8/digit8_0001.png"),
                f"--ckpt_file={checkpoints / 'net-2.ckpt'}",
                "--landmarks",
                str(landmarks),
            ]
            + TINY
        )


def test_infer_folder(predictor, digits, checkpoints, tmp_path, capsys):
    folder = tmp_path / "faces"
    (folder / "sub").mkdir(parents=True)
    root = digits["eval_root"]
    for name in ("digit7/digit7_0001.png", "digit9/digit9_0002.png"):
        image = cv2.imread(os.path.join(root, name))
        cv2.imwrite(str(folder / "sub" / os.path.basename(name)), image)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "emb.npy"
    infer_cli.main(
        ["--folder", str(folder), "--out", str(out), f"--ckpt_file={checkpoints / 'net-2.ckpt'}", "--aligned"] + TINY
    )
    out_text = capsys.readouterr().out
    assert "2 embeddings" in out_text and "1 images skipped" in out_text
    embeddings = np.load(out)
    names = (tmp_path / "emb.txt").read_text().split()
    assert names == ["sub/digit7_0001.png", "sub/digit9_0002.png"]
    np.testing.assert_allclose(embeddings, predictor.embed([str(folder / n) for n in names]), atol=1e-5)


def test_infer_needs_two_images_or_a_folder(capsys):
    with pytest.raises(SystemExit):
        infer_cli.main(["only_one.jpg"])
    assert "give two images, or --folder DIR" in capsys.readouterr().err


# ---------------------------------------------------------------- scripts

SCRIPT = os.path.join(ROOT, "scripts", "run_eval_standalone_CPU.sh")


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "DEVICE_ID and CKPT_FILE_OR_DIR are required"),
        (["x", "model.ckpt"], "DEVICE_ID must be a number"),
        (["0", "/nonexistent.ckpt"], "CKPT_FILE_OR_DIR not found"),
        (["0", ROOT, "/nonexistent.yaml"], "config file not found"),
        (["0", ROOT, "--eval_pairs", "x"], "must be --key=value"),
    ],
)
def test_script_usage(args, message):
    result = subprocess.run(["bash", SCRIPT] + args, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "usage: bash scripts/run_eval_standalone_CPU.sh DEVICE_ID" in result.stderr


def test_script_runs_from_any_directory(digits, checkpoints, tmp_path):
    """Relative paths are the caller's: the checkpoint is given relative to tmp_path, the current directory."""
    output = tmp_path / "script.json"
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "backbone: sphere4\nbackbone_width: 0.125\nembedding_size: 8\nimage_size: [32, 32]\noutput_dir: runs\n",
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHON=sys.executable)
    result = subprocess.run(
        [
            "bash",
            SCRIPT,
            "0",
            os.path.relpath(checkpoints / "net-2.ckpt", tmp_path),
            "tiny.yaml",
            f"--val_targets={digits_targets(digits)}",
            f"--eval_output={output}",
            "--eval_plots=false",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "LFWACC=" in result.stdout and "model=net-2.ckpt" in result.stdout
    assert "LFWACC=" in (tmp_path / "runs" / "eval_console.log").read_text(encoding="utf-8")
    with open(output, encoding="utf-8") as f:
        assert [os.path.basename(m) for m in json.load(f)["models"]] == ["net-2.ckpt"]
