"""tools/make_rec.py and tools/make_bin.py: written, then read back equal through the project's readers (the
RecordIO training reader, the .bin pair-set reader) and plain pickle as insightface loads it; multi-process
output identical to single-process; bad images named."""

import os
import pickle

import cv2
import numpy as np
import pytest
from face_data import LFW, LFW_IMAGES, LFW_LANDMARKS, require_lfw

from src.data.alignment import align_face, template_for
from src.data.image_io import decode_rgb
from src.data.images import load_sample_image
from src.data.readers import read_training_list
from src.eval.binset import read_bin
from src.eval.pair_images import PairImageError, load_pair_images
from src.eval.pairs import drop_missing_images, read_pairs
from src.eval.sources import read_pair_set
from tests.face_data import read_class_map
from tools import make_bin, make_rec

SIZE = (16, 12)
PEOPLE = {"carol": 3, "alice": 1, "bob": 2}  # labels by sorted name: alice 0, bob 1, carol 2


def write_png(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """root/<name>/<name>_000k.png random aligned faces of SIZE; {relpath: rgb}."""
    root = tmp_path_factory.mktemp("tree")
    rng = np.random.default_rng(0)
    images = {}
    for name, count in PEOPLE.items():
        for k in range(1, count + 1):
            relpath = f"{name}/{name}_{k:04d}.png"
            images[relpath] = rng.integers(0, 256, SIZE + (3,), dtype=np.uint8)
            write_png(root / relpath, images[relpath])
    return root, images


def rec_args(source, output, *extra):
    return make_rec.parse_args(
        ["--input", str(source), "--output", str(output), "--image_size", *map(str, SIZE), "--workers", "1", *extra]
    )


def test_rec_round_trip_from_a_tree(tree, tmp_path):
    root, images = tree
    result = make_rec.make_rec(rec_args(root, tmp_path / "rec"))
    assert (result["images"], result["classes"], result["skipped"]) == (6, 3, [])
    assert open(tmp_path / "rec" / "property", encoding="utf-8").read() == "3,16,12"
    assert read_class_map(str(tmp_path / "rec" / "class_names.txt")) == ["alice", "bob", "carol"]
    samples = read_training_list(str(tmp_path / "rec" / "train.rec"), "recordio").samples
    expected = sorted(images, key=lambda p: (p.split("/")[0], p))
    assert [s.label for s in samples] == [0, 1, 1, 2, 2, 2]
    for sample, relpath in zip(samples, expected):
        np.testing.assert_array_equal(load_sample_image(sample), images[relpath])


def test_rec_with_two_workers_is_byte_identical(tree, tmp_path):
    root, _ = tree
    make_rec.make_rec(rec_args(root, tmp_path / "one"))
    make_rec.make_rec(rec_args(root, tmp_path / "two", "--workers", "2"))
    for name in ("train.rec", "train.idx", "property"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_rec_aligns_a_list_with_landmarks_and_skips_bad_images(tmp_path):
    """A sphereface list: two 40x40 images whose landmarks are the 16x12 template scaled by 2 and moved; each
    record holds exactly (PNG) the face align_face gives; a corrupt file and a wrong-size aligned image are
    skipped with their names."""
    rng = np.random.default_rng(1)
    raw = {f"p{k}.png": rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for k in range(2)}
    for name, image in raw.items():
        write_png(tmp_path / "raw" / name, image)
    (tmp_path / "raw" / "broken.png").write_bytes(b"not a png")
    points = template_for(SIZE) * 2 + 3
    coords = " ".join(f"{v:.4f}" for v in points.ravel())
    lines = [f"p0.png 0 {coords}", f"p1.png 1 {coords}", f"broken.png 1 {coords}"]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = make_rec.make_rec(
        rec_args(
            tmp_path / "list.txt",
            tmp_path / "rec",
            "--format",
            "sphereface",
            "--root",
            str(tmp_path / "raw"),
            "--encoding",
            "png",
        )
    )
    assert result["images"] == 2 and len(result["skipped"]) == 1 and "broken.png" in result["skipped"][0]
    samples = read_training_list(str(tmp_path / "rec" / "train.rec"), "recordio").samples
    for sample, name in zip(samples, ["p0.png", "p1.png"]):
        expected = align_face(raw[name], np.array(points, np.float64), SIZE)
        np.testing.assert_array_equal(load_sample_image(sample), expected)
    # An aligned image of another size is refused, naming it (fit none), or fitted on request.
    write_png(tmp_path / "tree" / "x" / "big.png", rng.integers(0, 256, (32, 24, 3), dtype=np.uint8))
    refused = make_rec.make_rec(rec_args(tmp_path / "tree", tmp_path / "r1"))
    assert refused["images"] == 0 and "big.png: a 32x24 image, but the faces must be 16x12" in refused["skipped"][0]
    fitted = make_rec.make_rec(rec_args(tmp_path / "tree", tmp_path / "r2", "--fit", "resize"))
    assert fitted["images"] == 1
    with pytest.raises(FileExistsError, match="train.rec already exists"):
        make_rec.make_rec(rec_args(tmp_path / "tree", tmp_path / "r2"))


@pytest.fixture
def pairs_list(tree, tmp_path):
    root, _ = tree
    lines = [
        "1 carol/carol_0001.png carol/carol_0002.png",
        "0 alice/alice_0001.png bob/bob_0001.png",
        "1 bob/bob_0001.png bob/bob_0002.png",
        "0 carol/carol_0003.png bob/bob_0002.png",
    ] * 3
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines


def test_bin_round_trip(tree, pairs_list, tmp_path):
    root, images = tree
    path, lines = pairs_list
    output = tmp_path / "set.bin"
    args = make_bin.parse_args(
        [
            "--pairs",
            str(path),
            "--root",
            str(root),
            "--output",
            str(output),
            "--image_size",
            *map(str, SIZE),
            "--workers",
            "1",
        ]
    )
    assert make_bin.make_bin(args) == (12, 6)
    with open(output, "rb") as f:
        bins, issame = pickle.load(f, encoding="bytes")  # as insightface's load_bin reads it
    assert issame == [line[0] == "1" for line in lines]
    names = [name for line in lines for name in line.split()[1:]]
    assert bins == [(root / name).read_bytes() for name in names]  # aligned files kept byte for byte
    pair_set = read_bin(str(output))
    assert pair_set.issame.tolist() == issame
    for index in range(len(names)):
        np.testing.assert_array_equal(decode_rgb(pair_set.encoded[index]), images[names[index]])
    with pytest.raises(FileExistsError):
        make_bin.make_bin(args)


def test_bin_names_a_missing_image(tree, pairs_list, tmp_path):
    root, _ = tree
    path, _ = pairs_list
    text = path.read_text().replace("bob/bob_0002.png", "bob/bob_0009.png", 1)
    path.write_text(text)
    args = make_bin.parse_args(
        [
            "--pairs",
            str(path),
            "--root",
            str(root),
            "--output",
            str(tmp_path / "x.bin"),
            "--image_size",
            *map(str, SIZE),
            "--workers",
            "1",
        ]
    )
    with pytest.raises(PairImageError, match=f"{path}:3: cannot read image: .*bob_0009.png"):
        make_bin.make_bin(args)
    assert not (tmp_path / "x.bin").exists()


def test_bin_from_raw_lfw_equals_the_faces_aligned_on_the_fly(tmp_path):
    """20 pairs of real LFW (raw images_150 + landmarks, one pair naming the missing Betsy_Coffin_0001.jpg), written
    as a lossless 112x96 .bin with --skip_missing: its decoded faces are exactly eval.py's on-the-fly alignment."""
    require_lfw()
    source = read_pairs(os.path.join(LFW, "pairsDevTest.txt"), LFW_IMAGES)
    chosen = list(range(10)) + list(range(500, 510))
    lines = [
        f"{int(source.issame[i])} {source.relpaths[source.first[i]]} {source.relpaths[source.second[i]]}"
        for i in chosen
    ] + ["0 Betsy_Coffin/Betsy_Coffin_0001.jpg Abel_Pacheco/Abel_Pacheco_0001.jpg"]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "lfw20.bin"
    args = make_bin.parse_args(
        [
            "--pairs",
            str(tmp_path / "pairs.txt"),
            "--root",
            LFW_IMAGES,
            "--landmarks",
            LFW_LANDMARKS,
            "--output",
            str(output),
            "--image_size",
            "112",
            "96",
            "--encoding",
            "png",
            "--workers",
            "1",
            "--skip_missing",
        ]
    )
    assert make_bin.make_bin(args) == (20, 10)
    from_bin = load_pair_images(read_bin(str(output)), (112, 96))
    raw, missing = drop_missing_images(read_pair_set(str(tmp_path / "pairs.txt"), root=LFW_IMAGES))
    assert missing == ["Betsy_Coffin/Betsy_Coffin_0001.jpg"]
    aligned = load_pair_images(raw, (112, 96), LFW_LANDMARKS)
    np.testing.assert_array_equal(from_bin[0::2], aligned[raw.first])
    np.testing.assert_array_equal(from_bin[1::2], aligned[raw.second])


def test_bin_of_a_view1_file_keeps_its_folds(tree, tmp_path):
    """An LFW View 1 file lists 10 same then 10 different pairs, fold k = the k-th of each; the .bin is written
    fold by fold, so its contiguous folds (as insightface and eval.py read a .bin) are the file's folds."""
    root, _ = tree
    same = ["carol\t1\t2", "carol\t1\t3", "carol\t2\t3", "bob\t1\t2"] * 3
    different = ["alice\t1\tbob\t1", "carol\t1\tbob\t2", "alice\t1\tcarol\t3"] * 4
    path = tmp_path / "view1.txt"
    path.write_text("10\n" + "\n".join(same[:10] + different[:10]) + "\n", encoding="utf-8")
    output = tmp_path / "view1.bin"
    make_bin.make_bin(
        make_bin.parse_args(
            [
                "--pairs",
                str(path),
                "--root",
                str(root),
                "--image_ext",
                ".png",
                "--output",
                str(output),
                "--image_size",
                *map(str, SIZE),
                "--workers",
                "1",
            ]
        )
    )
    source, written = read_pairs(str(path), str(root), ".png"), read_bin(str(output))
    assert written.folds.tolist() == [k for k in range(10) for _ in range(2)]
    assert written.issame.tolist() == [True, False] * 10
    order = np.argsort(source.folds, kind="stable")
    for k, pair in enumerate(order):
        for encoded, index in (
            (written.encoded[2 * k], source.first[pair]),
            (written.encoded[2 * k + 1], source.second[pair]),
        ):
            assert encoded == (root / source.relpaths[index]).read_bytes()
