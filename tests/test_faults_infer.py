"""infer.py on raw photos where the detector finds more than the photo's face (see the fault table,
docs/faults.md): tiny false detections in a 1:N query, photos with several faces in folder mode."""

import pytest

from src.infer import command as infer_cli
from tests.infer_photos import ARGS, make_photos, tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def photos(tmp_path, monkeypatch):
    return make_photos(tmp_path, monkeypatch)


def test_tiny_false_detections_are_not_searched_and_scores_are_shown(model, photos, tmp_path, capsys):
    gallery = str(tmp_path / "gallery")
    query = photos["queries/ann.png"]
    assert infer_cli.cli(ARGS + [f"--ckpt_file={model}", "--gallery", gallery, "--query", query]) == 0
    lines = capsys.readouterr().out.splitlines()
    searched = next(line for line in lines if line.startswith(f"{query} #1/2 "))
    assert searched.endswith("(detection score 0.990)") and " cosine=" in searched
    skipped = next(line for line in lines if line.startswith(f"{query} #2/2 "))
    assert skipped.endswith("-> not searched: a 16 px face, below min_face 32 (a false detection?)"), skipped
    args = ARGS + [f"--ckpt_file={model}", "--gallery", gallery, "--query", query, "--min_face=8"]
    assert infer_cli.cli(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(
        line.startswith(f"{query} #2/2 ")
        and line.endswith("not searched: detection score 0.730, below min_score 0.9 (a false detection?)")
        for line in lines
    )
    assert infer_cli.cli(args + ["--min_score=0.5"]) == 0
    assert "not searched" not in capsys.readouterr().out


def test_folder_mode_reports_photos_with_several_faces_as_the_gallery_does(model, photos, tmp_path, capsys):
    out = tmp_path / "emb.npy"
    assert infer_cli.cli(ARGS + [f"--ckpt_file={model}", "--folder", str(tmp_path / "queries"), "--out", str(out)]) == 0
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith(
            "2 embeddings -> " + f"{out} (paths: {out.with_suffix('.txt')}); 0 images skipped; 2 photos had several "
            "faces; the most central one was embedded"
        )
    )
