"""infer.py and the Predictor on raw photos (detect -> align -> embed) and 1:N search of a gallery of people.

The face detector is a stand-in that returns the reference landmarks of ../shared lfw_landmark_150.txt for the
LFW photos it knows (none for any other image), so no MTCNN weights are needed and the faces are exactly those
of the LFW protocol. The converted MobileFaceNet (tools/convert_torch.py, needs PyTorch) must rank the right
person first for held-out photos; a tiny random network checks the cache, bad gallery input, several faces and
no face.
"""

import hashlib
import importlib.util
import os
import shutil

import cv2
import mindspore as ms
import numpy as np
import pytest

from src.data.alignment import align_face
from src.data.image_io import load_rgb
from src.data.landmarks import read_landmarks
from src.detect import Face
from src.infer import command as infer_cli
from src.infer import predictor as predictor_module
from src.infer.gallery import GalleryError, default_cache_path
from src.infer.image_input import as_rgb
from src.infer.predictor import Predictor
from src.infer.search_index import FAISS_MIN_SIZE, FaissIndex, NumpyIndex, build_index
from src.model_utils.config import load_config
from src.network import build_backbone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LFW = os.path.join(ROOT, "..", "shared", "data", "lfw")
MODEL_DIR = os.path.join(ROOT, "..", "shared", "models", "mobilefacenet_casia")
# Eight LFW people with 4 or 5 photos: photos 1-3 enrolled, photo 4 held out as the query.
PEOPLE = [
    "Aaron_Peirsol",
    "Adam_Sandler",
    "Alastair_Campbell",
    "Amer_al-Saadi",
    "Antonio_Banderas",
    "Art_Howe",
    "Barbara_Walters",
    "Benjamin_Netanyahu",
]
TINY = [
    "--device_target=CPU",
    "--config_path=",
    "--backbone=sphere4",
    "--backbone_width=0.125",
    "--embedding_size=8",
    "--image_size=[40, 32]",
    "--eval_batch_size=8",
]
MFN = [
    "--device_target=CPU",
    f"--config_path={os.path.join(ROOT, 'configs', 'mobilefacenet_lfw_eval.yaml')}",
    "--eval_batch_size=16",
]


def photo(person, number):
    return os.path.join(LFW, "images_150", person, f"{person}_{number:04d}.jpg")


def image_key(image):
    image = np.ascontiguousarray(image)
    return image.shape, hashlib.sha1(image.tobytes()).hexdigest()


def face_at(points, score=0.99):
    """A detector ``Face`` around 5 landmarks (a box 1.6 eye-mouth spans wide)."""
    points = np.asarray(points, np.float32)
    centre, span = points.mean(axis=0), np.ptp(points, axis=0).max()
    box = np.concatenate([centre - 0.8 * span, centre + 0.8 * span]).astype(np.float32)
    return Face(box=box, score=score, landmarks=points)


class FakeDetector:
    """Faces of the images it was told about (by their pixels), most central first as given; none otherwise."""

    def __init__(self):
        self.known = {}

    def add(self, image, faces):
        self.known[image_key(as_rgb(image))] = faces

    def detect(self, image_rgb):
        return list(self.known.get(image_key(image_rgb), []))

    def detect_batch(self, images):
        return [self.detect(image) for image in images]


@pytest.fixture(scope="module")
def landmarks():
    if not os.path.isdir(LFW):
        pytest.skip(f"the shared data folder ../shared ({os.path.abspath(os.path.dirname(LFW))}) is absent")
    table = read_landmarks(os.path.join(LFW, "lfw_landmark_150.txt"))
    return {photo(person, n): table[f"{person}/{person}_{n:04d}.jpg"] for person in PEOPLE for n in range(1, 5)}


@pytest.fixture(scope="module")
def detector(landmarks):
    fake = FakeDetector()
    for path, points in landmarks.items():
        fake.add(path, [face_at(points)])
    return fake


def make_gallery(folder, numbers=(1, 2, 3)):
    for person in PEOPLE:
        os.makedirs(folder / person)
        for number in numbers:
            shutil.copy2(photo(person, number), folder / person)
    return folder


def random_checkpoint(path, seed):
    net = build_backbone("sphere4", embedding_size=8, image_size=(40, 32), width=0.125)
    rng = np.random.default_rng(seed)
    for param in net.trainable_params():
        param.set_data(ms.Tensor(rng.normal(0, 0.3, param.shape).astype(np.float32)))
    ms.save_checkpoint(net, str(path))
    return str(path)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny.ckpt", 3)


@pytest.fixture
def tiny(tiny_ckpt, detector):
    return Predictor(load_config(TINY), tiny_ckpt, detector=detector)


@pytest.fixture
def use_detector(detector, monkeypatch):
    """infer.py (through Predictor) gets the fake detector from load_detector."""
    monkeypatch.setattr(predictor_module, "load_detector", lambda: detector)
    return detector


# ---------------------------------------------------------------- the real model on real LFW people


@pytest.fixture(scope="module")
def mobilefacenet(tmp_path_factory, landmarks):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed (optional: pip install torch==2.13.0); the converter needs it")
    from tools.convert_torch import main as convert_torch

    path = str(tmp_path_factory.mktemp("mfn") / "mobilefacenet.ckpt")
    convert_torch(
        ["--backbone", "mobilefacenet", "--torch_ckpt", os.path.join(MODEL_DIR, "068.ckpt"), "--output", path]
    )
    return path


@pytest.fixture(scope="module")
def mfn_gallery(tmp_path_factory, landmarks):
    return make_gallery(tmp_path_factory.mktemp("people") / "gallery")


def test_real_model_ranks_the_right_person_first(mobilefacenet, mfn_gallery, detector, landmarks):
    predictor = Predictor(load_config(MFN), mobilefacenet, detector=detector)
    gallery = predictor.enroll(mfn_gallery)
    assert gallery.identities == PEOPLE and gallery.photos.tolist() == [3] * len(PEOPLE) and not gallery.cached
    assert os.path.isfile(default_cache_path(mfn_gallery)) and not gallery.skipped
    # An identity is the normalised mean of its photos' embeddings, each aligned with the reference landmarks.
    enrolled = [photo(PEOPLE[2], n) for n in (1, 2, 3)]
    mean = predictor.embed(enrolled, [landmarks[p] for p in enrolled]).mean(axis=0)
    np.testing.assert_allclose(gallery.embeddings[2], mean / np.linalg.norm(mean), atol=1e-5)

    queries = [photo(person, 4) for person in PEOPLE]
    results = predictor.search(queries, gallery, top_k=3)
    assert [r.image for r in results] == queries
    features = predictor.embed(queries, [landmarks[q] for q in queries])
    for person, feature, result in zip(PEOPLE, features, results):
        assert result.matches[0].identity == person, result
        assert result.matches[0].cosine > result.matches[1].cosine >= result.matches[2].cosine
        assert result.matches[0].cosine == pytest.approx(
            float(feature @ gallery.embeddings[PEOPLE.index(person)]), abs=1e-5
        )
        assert result.box is not None and result.faces == 1


@pytest.mark.slow
def test_infer_searches_the_gallery_from_its_cache(mobilefacenet, mfn_gallery, use_detector, capsys):
    queries = [photo(person, 4) for person in PEOPLE[:3]]
    args = MFN + [f"--ckpt_file={mobilefacenet}", "--gallery", str(mfn_gallery), "--query", *queries]
    assert infer_cli.cli(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"gallery {mfn_gallery}: 8 identities from 24 photos ") for line in lines)
    for person, query in zip(PEOPLE, queries):
        assert any(line.startswith(f"{query} -> {person} cosine=") for line in lines), lines
    assert infer_cli.cli(args + ["--same_threshold=0.999", "--top_k=2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        f"gallery {mfn_gallery}: 8 identities from 24 photos read from its cache; 0 photos or folders skipped" in lines
    )
    assert any(line.startswith(f"{queries[0]} -> unknown (best {PEOPLE[0]} cosine=") for line in lines)
    first = lines.index(next(line for line in lines if line.startswith(queries[0])))
    assert lines[first + 1].startswith(f"    1. {PEOPLE[0]} cosine=") and lines[first + 2].startswith("    2. ")


def test_infer_prints_each_query_and_its_top_k(tmp_path, tiny_ckpt, use_detector, capsys):
    gallery_dir = make_gallery(tmp_path / "gallery", numbers=(1,))
    queries = [photo(person, 2) for person in PEOPLE[:2]]
    args = TINY + [f"--ckpt_file={tiny_ckpt}", "--gallery", str(gallery_dir), "--query", *queries, "--top_k", "3"]
    assert infer_cli.cli(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"gallery {gallery_dir}: 8 identities from 8 photos enrolled; 0 photos or folders skipped" in lines
    assert any(line.startswith("(no same_threshold set") for line in lines)
    for query in queries:
        first = next(k for k, line in enumerate(lines) if line.startswith(f"{query} -> "))
        best = lines[first].split(" -> ")[1].split(" cosine=")[0]
        assert best in PEOPLE and lines[first + 1].startswith(f"    1. {best} cosine=")
        assert [line[:7] for line in lines[first + 2 : first + 4]] == ["    2. ", "    3. "]
    assert infer_cli.cli(args[:-2] + ["--same_threshold=1.0"]) == 0  # cosines are <= 1
    lines = capsys.readouterr().out.splitlines()
    assert (
        f"gallery {gallery_dir}: 8 identities from 8 photos read from its cache; 0 photos or folders skipped" in lines
    )
    assert sum(line.startswith(f"{q} -> unknown (best ") for q in queries for line in lines) == 2


@pytest.mark.slow
def test_real_detector_and_model_identify_held_out_photos(mobilefacenet, mfn_gallery):
    """End to end on raw photos: MTCNN (src/detect) -> alignment -> MobileFaceNet -> gallery search."""
    from src.detect import WeightsError, load_detector

    try:
        detector = load_detector()
    except WeightsError as err:
        pytest.skip(f"the MTCNN weights are not available: {err}")
    predictor = Predictor(load_config(MFN), mobilefacenet, detector=detector)
    gallery = predictor.enroll(mfn_gallery, cache=False)
    assert gallery.identities == PEOPLE and not gallery.skipped
    results = predictor.search([photo(person, 4) for person in PEOPLE], gallery, top_k=2)
    assert [r.matches[0].identity for r in results if r.face == 0] == PEOPLE


# ---------------------------------------------------------------- the gallery cache


def test_cache_is_reused_and_follows_model_and_photos(tmp_path, tiny_ckpt, detector):
    gallery_dir = make_gallery(tmp_path / "gallery", numbers=(1, 2))
    model = shutil.copy(tiny_ckpt, tmp_path / "model.ckpt")
    first = Predictor(load_config(TINY), model, detector=detector).enroll(gallery_dir)
    again = Predictor(load_config(TINY), model, detector=detector).enroll(gallery_dir)
    assert not first.cached and again.cached and again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    assert again.identities == first.identities and again.photos.tolist() == first.photos.tolist()

    random_checkpoint(model, 4)  # the model file changes
    changed = Predictor(load_config(TINY), model, detector=detector).enroll(gallery_dir)
    assert not changed.cached and changed.fingerprint != first.fingerprint
    assert np.abs(changed.embeddings - first.embeddings).max() > 1e-3

    predictor = Predictor(load_config(TINY), model, detector=detector)
    shutil.copy2(photo(PEOPLE[0], 3), gallery_dir / PEOPLE[0])  # a photo is added
    added = predictor.enroll(gallery_dir)
    assert not added.cached and added.photos[0] == 3
    assert predictor.enroll(gallery_dir).cached
    fused = Predictor(load_config(TINY + ["--fusion=sum"]), model, detector=detector).enroll(gallery_dir)
    assert not fused.cached  # a setting that changes embeddings


def test_cache_elsewhere_unwritable_or_damaged(tmp_path, tiny, caplog):
    gallery_dir = make_gallery(tmp_path / "gallery", numbers=(1,))
    elsewhere = tmp_path / "cache" / "people.npz"
    os.makedirs(elsewhere.parent)
    assert not tiny.enroll(gallery_dir, cache=str(elsewhere)).cached
    assert tiny.enroll(gallery_dir, cache=str(elsewhere)).cached and not os.path.exists(default_cache_path(gallery_dir))
    elsewhere.write_bytes(b"not a zip file")
    assert not tiny.enroll(gallery_dir, cache=str(elsewhere)).cached
    assert "is unreadable" in caplog.text
    unwritable = tmp_path / "missing_folder" / "people.npz"
    assert len(tiny.enroll(gallery_dir, cache=str(unwritable))) == len(PEOPLE)
    assert f"cannot write the cache {unwritable}" in caplog.text
    assert not tiny.enroll(gallery_dir, cache=False).cached


def test_landmark_file_instead_of_the_detector(tmp_path, tiny_ckpt, tiny, capsys):
    """--landmarks: gallery photos by their path in the gallery, queries by the end of theirs; the same faces as
    the detector's (the same points), so the same cosines; a cache made with detection is not reused."""
    gallery_dir = make_gallery(tmp_path / "gallery", numbers=(1, 2))
    query = photo(PEOPLE[5], 4)
    detected = tiny.search([query], tiny.enroll(gallery_dir), top_k=len(PEOPLE))[0]
    args = TINY + [
        f"--ckpt_file={tiny_ckpt}",
        "--gallery",
        str(gallery_dir),
        "--query",
        query,
        "--top_k=8",
        "--landmarks",
        os.path.join(LFW, "lfw_landmark_150.txt"),
    ]
    assert infer_cli.cli(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"gallery {gallery_dir}: 8 identities from 16 photos enrolled; 0 photos or folders skipped" in lines
    first = next(k for k, line in enumerate(lines) if line.startswith(f"{query} -> "))
    assert lines[first + 1 : first + 9] == [
        f"    {rank}. {m.identity} cosine={m.cosine:.4f}" for rank, m in enumerate(detected.matches, 1)
    ]


def test_bad_gallery_input_is_skipped_and_counted(tmp_path, tiny_ckpt, use_detector, capsys):
    gallery_dir = tmp_path / "gallery"
    for person in PEOPLE[:2]:
        os.makedirs(gallery_dir / person)
        shutil.copy2(photo(person, 1), gallery_dir / person)
    (gallery_dir / PEOPLE[0] / "zero.jpg").write_bytes(b"")  # zero-byte file
    os.makedirs(gallery_dir / "Nobody")  # empty folder
    os.makedirs(gallery_dir / "Broken")  # nothing readable
    (gallery_dir / "Broken" / "corrupt.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    os.makedirs(gallery_dir / "Faceless")  # no face found
    cv2.imwrite(str(gallery_dir / "Faceless" / "noise.png"), np.full((60, 60, 3), 128, np.uint8))
    shutil.copy2(photo(PEOPLE[2], 1), gallery_dir / "loose.jpg")  # not in a person folder
    args = TINY + [
        f"--ckpt_file={tiny_ckpt}",
        "--gallery",
        str(gallery_dir),
        "--query",
        photo(PEOPLE[0], 2),
        photo(PEOPLE[1], 2),
    ]
    assert infer_cli.cli(args) == 0
    captured = capsys.readouterr()
    assert f"gallery {gallery_dir}: 2 identities from 2 photos enrolled; 7 photos or folders skipped" in captured.out
    for message in (
        "zero.jpg: cannot decode image",
        "Nobody: identity folder without photos",
        "corrupt.jpg: cannot decode image",
        "skipped identity Broken: no photo with a usable face",
        "noise.png: no face found in",
        "skipped identity Faceless",
        "loose.jpg: not inside an identity folder",
    ):
        assert message in captured.out, message  # logged warnings
    assert "Traceback" not in captured.err
    gallery = Predictor(load_config(TINY), tiny_ckpt, detector=use_detector).enroll(gallery_dir)
    assert gallery.cached and gallery.identities == PEOPLE[:2] and len(gallery.skipped) == 7


def test_unusable_gallery_or_query_is_a_message(tmp_path, tiny_ckpt, use_detector, capsys):
    model = f"--ckpt_file={tiny_ckpt}"
    query = photo(PEOPLE[0], 2)
    assert infer_cli.cli(TINY + [model, "--gallery", str(tmp_path / "none"), "--query", query]) == 1
    assert f"error: gallery folder not found: {tmp_path / 'none'}" in capsys.readouterr().err
    os.makedirs(tmp_path / "empty" / "Nobody")
    assert infer_cli.cli(TINY + [model, "--gallery", str(tmp_path / "empty"), "--query", query]) == 1
    assert "no identity folder with photos" in capsys.readouterr().err
    os.makedirs(tmp_path / "faceless" / "Someone")
    cv2.imwrite(str(tmp_path / "faceless" / "Someone" / "grey.png"), np.full((60, 60), 90, np.uint8))
    assert infer_cli.cli(TINY + [model, "--gallery", str(tmp_path / "faceless"), "--query", query]) == 1
    assert "error: no identity could be enrolled (2 photos or folders skipped)" in capsys.readouterr().err

    gallery_dir = make_gallery(tmp_path / "gallery", numbers=(1,))
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.zeros((80, 80, 3), np.uint8))
    assert (
        infer_cli.cli(
            TINY + [model, "--gallery", str(gallery_dir), "--query", str(blank), query, str(tmp_path / "missing.jpg")]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert f"{blank} -> not searched: no face found in {blank}" in captured.out
    assert f"{query} -> " in captured.out and f"{query} -> not searched" not in captured.out
    assert f"missing.jpg -> not searched: cannot read image: {tmp_path / 'missing.jpg'}" in captured.out
    assert "Traceback" not in captured.err


# ---------------------------------------------------------------- 1:1 on raw photos


def test_two_photos_are_detected_aligned_and_compared(tiny_ckpt, tiny, use_detector, landmarks, capsys, tmp_path):
    a, b = photo(PEOPLE[0], 1), photo(PEOPLE[1], 1)
    expected = tiny.similarity(a, b, landmarks[a], landmarks[b])
    assert tiny.similarity(a, b) == pytest.approx(expected, abs=1e-6)
    assert infer_cli.cli(TINY + [f"--ckpt_file={tiny_ckpt}", a, b, f"--same_threshold={expected - 0.01}"]) == 0
    assert f"cosine={expected:.4f} same (threshold {expected - 0.01:.4f})" in capsys.readouterr().out.splitlines()
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.zeros((80, 80, 3), np.uint8))
    assert infer_cli.cli(TINY + [f"--ckpt_file={tiny_ckpt}", a, str(blank)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: no face found in {blank}\n" and "cosine" not in captured.out


@pytest.fixture
def two_faces(tmp_path, use_detector, landmarks):
    """A 150x300 photo of two LFW photos side by side, the right one registered as the more central face."""
    left, right = photo(PEOPLE[0], 1), photo(PEOPLE[1], 1)
    image = np.concatenate([load_rgb(left), load_rgb(right)], axis=1)
    path = tmp_path / "two.png"
    cv2.imwrite(str(path), image[:, :, ::-1])
    points = [landmarks[right] + np.float32([150, 0]), landmarks[left]]
    use_detector.add(image, [face_at(points[0]), face_at(points[1], 0.9)])
    return str(path), points


def test_every_face_is_listed_and_compared(tiny_ckpt, tiny, two_faces, capsys):
    path, points = two_faces
    other = photo(PEOPLE[2], 1)
    cosines = [tiny.similarity(path, other, p, None) for p in points]
    assert tiny.similarity(path, other) == pytest.approx(cosines[0], abs=1e-6)  # the most central face
    faces, features = tiny.embed_faces(path)
    assert len(faces) == 2 and features.shape == (2, 16)
    assert infer_cli.cli(TINY + [f"--ckpt_file={tiny_ckpt}", path, other]) == 0
    lines = capsys.readouterr().out.splitlines()
    listing = lines.index(next(line for line in lines if line.startswith(f"{path}: 2 faces")))
    assert (
        lines[listing].startswith(f"{path}: 2 faces, most central first: #1 box (") and ", #2 box (" in lines[listing]
    )
    assert lines[listing + 1].startswith(f"cosine={cosines[0]:.4f} (the most central faces, #1;")
    assert infer_cli.cli(TINY + [f"--ckpt_file={tiny_ckpt}", path, other, "--all_faces"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listing = lines.index(next(line for line in lines if line.startswith(f"{path}: 2 faces")))
    assert lines[listing + 1 : listing + 3] == [
        f"{path} #{k} - {other} #1: cosine={cosines[k - 1]:.4f}" for k in (1, 2)
    ]
    assert lines[listing + 3].startswith("(no same_threshold set")


def test_every_face_of_a_query_is_searched(tiny, two_faces):
    path, _ = two_faces
    gallery = tiny.enroll({person: [photo(person, n) for n in (1, 2)] for person in PEOPLE[:2]})
    assert not gallery.cached and gallery.fingerprint == ""
    results = tiny.search([path], gallery, top_k=2)
    assert [(r.face, r.faces) for r in results] == [(0, 2), (1, 2)]
    assert results[0].box[0] > 150 > results[1].box[2]  # the right-hand face first, as detected
    assert {m.identity for m in results[0].matches} == set(PEOPLE[:2])


def test_arrays_grey_and_rgba(tiny, landmarks):
    path = photo(PEOPLE[3], 1)
    rgb = load_rgb(path)
    expected = align_face(rgb, landmarks[path], (40, 32))
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(tiny.prepare(rgba, landmarks[path]), expected)
    grey = rgb[:, :, 1]
    np.testing.assert_array_equal(
        tiny.prepare(grey, landmarks[path]), align_face(np.dstack([grey] * 3), landmarks[path], (40, 32))
    )
    with pytest.raises(ValueError, match="expected an HxWx3 uint8 RGB image"):
        tiny.prepare(rgb.astype(np.float32), landmarks[path])
    with pytest.raises(GalleryError, match="has no identity"):
        tiny.enroll({})


# ---------------------------------------------------------------- the search index


def test_numpy_and_faiss_find_the_same_neighbours():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:20] + 0.1 * rng.standard_normal((20, 16)).astype(np.float32)
    numpy_scores, numpy_ids = NumpyIndex(vectors).search(queries, 5)
    faiss_scores, faiss_ids = FaissIndex(vectors).search(queries, 5)
    np.testing.assert_array_equal(numpy_ids, faiss_ids)
    np.testing.assert_allclose(numpy_scores, faiss_scores, atol=1e-5)
    np.testing.assert_allclose(numpy_scores, np.sort(queries @ vectors.T, axis=1)[:, ::-1][:, :5], atol=1e-5)
    assert NumpyIndex(vectors[:3]).search(queries, 5)[1].shape == (20, 3)  # k above the size
    assert build_index(vectors).name == "numpy"
    assert build_index(np.zeros((FAISS_MIN_SIZE, 4), np.float32)).name == "faiss"
    with pytest.raises(ValueError, match="unknown search backend"):
        build_index(vectors, "annoy")
