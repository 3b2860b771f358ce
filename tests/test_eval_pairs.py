"""Pair-set readers (LFW pairs files, generic lists, insightface .bin through the restricted unpickler), the
loading and alignment of their images, and the error each bad input gives."""

import os
import pickle

import cv2
import numpy as np
import pytest

from src.data.alignment import AlignmentError, fit_aligned
from src.eval.binset import BinFormatError, UnsafePickleError, read_bin, safe_load
from src.eval.pair_images import PairImageError, load_pair_images
from src.eval.pairs import PairsFormatError, contiguous_folds, read_label_pairs, read_pairs
from src.eval.sources import detect_format, read_pair_set


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_view2_header_gives_contiguous_folds(tmp_path):
    pairs = write(tmp_path / "pairs.txt", "2\t1\nAnn\t1\t2\nAnn\t1\tBob\t1\nBob\t1\t3\nCy\t2\tAnn\t2\n")
    pair_set = read_pairs(pairs, root="/data", ext=".png")
    assert pair_set.relpaths == [
        "Ann/Ann_0001.png",
        "Ann/Ann_0002.png",
        "Bob/Bob_0001.png",
        "Bob/Bob_0003.png",
        "Cy/Cy_0002.png",
    ]
    assert pair_set.first.tolist() == [0, 0, 2, 4] and pair_set.second.tolist() == [1, 2, 3, 1]
    assert pair_set.issame.tolist() == [True, False, True, False]
    assert pair_set.folds.tolist() == [0, 0, 1, 1]
    assert pair_set.where[3] == f"{pairs}:4"  # Bob_0003 first appears on line 4
    assert pair_set.paths[0] == os.path.join("/data", "Ann/Ann_0001.png")


def test_view1_header_builds_folds_from_equal_shares(tmp_path):
    same = "".join(f"P{i}\t1\t2\n" for i in range(20))
    diff = "".join(f"P{i}\t1\tQ{i}\t1\n" for i in range(20))
    pair_set = read_pairs(write(tmp_path / "pairsDevTest.txt", "20\n" + same + diff))
    expected = np.repeat(np.arange(10), 2)
    assert pair_set.folds.tolist() == expected.tolist() + expected.tolist()


def test_real_lfw_pairs_files(shared_dir):
    lfw = os.path.join(shared_dir, "data", "lfw")
    view2 = read_pairs(os.path.join(lfw, "pairs.txt"))
    assert (len(view2), int(view2.issame.sum()), len(view2.relpaths)) == (6000, 3000, 7701)
    assert np.bincount(view2.folds).tolist() == [600] * 10
    view1 = read_pairs(os.path.join(lfw, "pairsDevTest.txt"))
    assert len(view1) == 1000 and np.bincount(view1.folds[view1.issame]).tolist() == [50] * 10
    assert detect_format(os.path.join(lfw, "pairs.txt")) == "lfw"


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("1\t1\nAnn\t1\n", 2, "expected 'name n1 n2' or 'name1 n1 name2 n2'"),
        ("1\t1\nAnn\t1\t2\nAnn\tx\tBob\t1\n", 3, "image numbers must be integers"),
        ("ten\t300\nAnn\t1\t2\n", 1, "header must be"),
    ],
)
def test_malformed_pairs_line_names_file_and_line(tmp_path, text, line, message):
    pairs = write(tmp_path / "pairs.txt", text)
    with pytest.raises(PairsFormatError, match=f"{pairs}:{line}: {message}"):
        read_pairs(pairs)


def test_pairs_count_must_match_header(tmp_path):
    pairs = write(tmp_path / "pairs.txt", "2\t1\nAnn\t1\t2\nAnn\t1\tBob\t1\n")
    with pytest.raises(PairsFormatError, match="header says 2 folds of 2x1 pairs, found 2 pairs"):
        read_pairs(pairs)


def test_missing_pairs_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="pairs file not found: .*nothere.txt"):
        read_pair_set(str(tmp_path / "nothere.txt"))


def test_contiguous_folds_match_kfold_without_shuffle():
    from sklearn.model_selection import KFold

    folds = contiguous_folds(23)
    for k, (_, test) in enumerate(KFold(10).split(np.zeros(23))):
        assert np.flatnonzero(folds == k).tolist() == test.tolist()


def test_label_list(tmp_path):
    text = "# label path1 path2\n1 a/1.jpg a/2.jpg\n\n0 a/1.jpg b/1.jpg\n" * 10
    pair_set = read_pair_set(write(tmp_path / "list.txt", text), root=str(tmp_path))
    assert detect_format(str(tmp_path / "list.txt")) == "list"
    assert pair_set.relpaths == ["a/1.jpg", "a/2.jpg", "b/1.jpg"]
    assert pair_set.issame.tolist() == [True, False] * 10
    assert pair_set.folds.tolist() == np.repeat(np.arange(10), 2).tolist()


@pytest.mark.parametrize(
    "line, message",
    [
        ("2 a.jpg b.jpg", "label must be 1 \\(same\\) or 0 \\(different\\), got '2'"),
        ("1 a.jpg", "expected 'label path1 path2'"),
    ],
)
def test_malformed_list_line_names_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "list.txt", "1 a.jpg b.jpg\n" + line + "\n")
    with pytest.raises(PairsFormatError, match=f"{path}:2: {message}"):
        read_label_pairs(path)


# ---------------------------------------------------------------- images


def face(seed, size=(112, 112)):
    return np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)


def png(image):
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def test_template_fit_of_arcface_crops_is_the_centre_crop():
    image = face(0)
    np.testing.assert_array_equal(fit_aligned(image, (112, 96)), image[:, 8:104])
    assert fit_aligned(image, (56, 48), "resize").shape == (56, 48, 3)


def test_missing_image_names_pairs_file_and_line(tmp_path):
    (tmp_path / "Ann").mkdir()
    cv2.imwrite(str(tmp_path / "Ann" / "Ann_0001.jpg"), face(1))
    pairs = write(tmp_path / "pairs.txt", "1\t1\nAnn\t1\t1\nAnn\t1\tBob\t1\n")
    pair_set = read_pairs(pairs, str(tmp_path))
    with pytest.raises(PairImageError, match=f"{pairs}:3: cannot read image: .*Bob_0001.jpg"):
        load_pair_images(pair_set, (112, 96))


def test_degenerate_landmarks_name_landmark_file_image_and_pairs_line(tmp_path):
    (tmp_path / "Ann").mkdir()
    cv2.imwrite(str(tmp_path / "Ann" / "Ann_0001.jpg"), face(2, (150, 150)))
    pairs = write(tmp_path / "pairs.txt", "1\t1\nAnn\t1\t1\nAnn\t1\tAnn\t1\n")
    landmarks = write(tmp_path / "landmarks.txt", "Ann/Ann_0001.jpg" + "\t10" * 10 + "\n")
    with pytest.raises(
        AlignmentError,
        match=f"{landmarks}: image Ann/Ann_0001.jpg \\(used at {pairs}:2\\): cannot estimate an alignment",
    ):
        load_pair_images(read_pairs(pairs, str(tmp_path)), (112, 96), landmarks)


def test_aligned_folder_with_label_list(tmp_path):
    images = {f"p{i}.png": face(i, (112, 112)) for i in range(3)}
    for name, image in images.items():
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    lines = "1 p0.png p1.png\n0 p1.png p2.png\n" * 5
    pair_set = read_pair_set(write(tmp_path / "list.txt", lines), root=str(tmp_path))
    loaded = load_pair_images(pair_set, (112, 96))
    np.testing.assert_array_equal(loaded[2], images["p2.png"][:, 8:104])


# ---------------------------------------------------------------- insightface .bin


def make_bin(path, images, issame, protocol=pickle.HIGHEST_PROTOCOL):
    with open(path, "wb") as f:
        pickle.dump(([png(image) for image in images], issame), f, protocol=protocol)
    return str(path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("as_array", [False, True])
def test_bin_round_trip(tmp_path, protocol, as_array):
    images = [face(i) for i in range(40)]
    issame = [bool(i % 2 == 0) for i in range(20)]
    flags = np.array(issame) if as_array else issame
    path = make_bin(tmp_path / "lfw.bin", images, flags, protocol)
    pair_set = read_pair_set(path)
    assert pair_set.first.tolist() == list(range(0, 40, 2)) and pair_set.second.tolist() == list(range(1, 40, 2))
    assert pair_set.issame.tolist() == issame
    assert pair_set.folds.tolist() == np.repeat(np.arange(10), 2).tolist()
    loaded = load_pair_images(pair_set, (112, 96))
    np.testing.assert_array_equal(loaded[5], images[5][:, 8:104])  # PNG is lossless


def test_bin_with_numpy_bool_scalars_and_encoded_arrays(tmp_path):
    images = [np.frombuffer(png(face(i)), np.uint8) for i in range(20)]
    path = tmp_path / "cfp_fp.bin"
    path.write_bytes(pickle.dumps((images, [np.bool_(i < 5) for i in range(10)]), protocol=2))
    pair_set = read_bin(str(path))
    assert pair_set.issame.tolist() == [True] * 5 + [False] * 5
    assert pair_set.encoded[3] == images[3].tobytes()


class RunsCode:
    """Unpickling this calls os.system: the classic malicious pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_crafted_bin_is_rejected_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "lfw.bin"
    path.write_bytes(pickle.dumps(([png(face(0)), RunsCode(marker)], [True])))
    with pytest.raises(
        UnsafePickleError,
        match=r"lfw.bin: refused to load: refused global '(posix|os)\.system'.*"
        r"crafted to execute code",
    ):
        read_pair_set(str(path))
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps((eval, ("1",))),
        b"cbuiltins\neval\n(S'1'\ntR.",  # REDUCE on builtins.eval, protocol 0
        pickle.dumps(np.array([{"a": 1}], dtype=object)),  # object array: arbitrary objects
    ],
)
def test_restricted_unpickler_refuses_other_globals(payload):
    with pytest.raises(UnsafePickleError):
        safe_load(payload)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x80\x04\x95garbage", "not a readable .bin set"),
        (pickle.dumps({"images": []}), "expected a pickled pair"),
        (pickle.dumps(([b"x", b"y", b"z"], [True])), "3 images for 1 pairs"),
        (pickle.dumps(([1, 2], [True])), "image #0 is a int"),
    ],
)
def test_unreadable_bin_is_named(tmp_path, content, message):
    path = tmp_path / "agedb_30.bin"
    path.write_bytes(content)
    with pytest.raises(BinFormatError, match=f"{path}: .*{message}"):
        read_bin(str(path))


def test_undecodable_bin_image_names_file_and_index(tmp_path):
    path = tmp_path / "lfw.bin"
    path.write_bytes(pickle.dumps(([png(face(0)), b"not an image"] * 10, [True] * 10)))
    with pytest.raises(PairImageError, match=f"{path}: image #1 \\(pair 1\\): cannot decode image"):
        load_pair_images(read_bin(str(path)), (112, 112))
