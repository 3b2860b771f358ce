"""InsightFace RecordIO without MXNet: the record layout of the spec byte for byte, a small train.rec written by
the project's writer and read back (labels from the header record's identity ranges), and each bad input's
error naming the file and line or byte offset."""
import os
import struct

import cv2
import numpy as np
import pytest

from src.data.image_io import ImageDecodeError
from src.data.images import load_sample_image
from src.data.readers import read_training_list
from src.data.recordio import (MAGIC, MAGIC_BYTES, RecordIOError, RecordWriter, encode_record, pack_payload,
                               read_record, unpack_payload)
from tests.face_data import write_face_rec

CLASS_SIZES = (3, 1, 4)


def header(cflag, length):
    return struct.pack("<II", MAGIC, cflag << 29 | length)


def read_back(path, offset):
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_record(fd, offset, path)
    finally:
        os.close(fd)


def test_record_layout_follows_the_spec():
    assert encode_record(b"abcde") == header(0, 5) + b"abcde" + b"\0\0\0"
    assert encode_record(b"abcd") == header(0, 4) + b"abcd"
    # The magic word at an aligned position splits the record; it is not stored.
    assert encode_record(b"1234" + MAGIC_BYTES + b"56") == header(1, 4) + b"1234" + header(3, 2) + b"56\0\0"
    assert encode_record(MAGIC_BYTES + b"xy" + MAGIC_BYTES[:2]) == header(1, 0) + header(3, 4) + b"xy" + MAGIC_BYTES[:2]
    # Unaligned, it stays inline.
    assert encode_record(b"1" + MAGIC_BYTES) == header(0, 5) + b"1" + MAGIC_BYTES + b"\0\0\0"


@pytest.mark.parametrize("payload", [b"", b"abcde", b"1234" + MAGIC_BYTES + b"56",
                                     MAGIC_BYTES * 3 + b"z", b"ab" + MAGIC_BYTES + b"cd" + MAGIC_BYTES])
def test_records_round_trip(tmp_path, payload):
    path = str(tmp_path / "t.rec")
    with RecordWriter(path) as writer:
        writer.write(0, b"first")
        writer.write(1, payload)
        writer.write(2, b"last")
    offsets = [int(line.split()[1]) for line in open(tmp_path / "t.idx", encoding="utf-8")]
    assert [read_back(path, offset) for offset in offsets] == [b"first", payload, b"last"]


def test_header_pack_and_unpack():
    label, body = unpack_payload(pack_payload(7, b"JPEG", key=3), "x")
    assert (label, body) == (7.0, b"JPEG")
    labels, body = unpack_payload(pack_payload([11, 20], b""), "x")
    np.testing.assert_array_equal(labels, [11.0, 20.0])
    assert body == b"" and len(pack_payload(7, b"")) == 24


def make_rec(folder, seed=0):
    """train.rec with CLASS_SIZES images per class; returns (rec path, [(rgb image, label)] in file order)."""
    rng = np.random.default_rng(seed)
    images = []
    for label, count in enumerate(CLASS_SIZES):
        for _ in range(count):
            images.append((rng.integers(0, 256, (16, 12, 3), dtype=np.uint8), label))
    encoded = [(cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes(), label)
               for image, label in images]
    os.makedirs(folder, exist_ok=True)
    rec = os.path.join(folder, "train.rec")
    assert write_face_rec(rec, encoded, (16, 12)) == len(CLASS_SIZES)
    return rec, images


def test_face_rec_labels_from_identity_ranges(tmp_path):
    rec, images = make_rec(str(tmp_path))
    assert open(tmp_path / "property", encoding="utf-8").read() == "3,16,12"
    training = read_training_list(rec, "recordio")
    samples = training.samples
    assert [s.label for s in samples] == [0, 0, 0, 1, 2, 2, 2, 2]
    assert [s.line for s in samples] == list(range(2, 10))  # idx line 1 is the header record (key 0)
    assert all(s.path == rec and s.offset is not None for s in samples)
    for sample, (image, _) in zip(samples, images):
        np.testing.assert_array_equal(load_sample_image(sample), image)
    # The header record names the image keys 1..8 and the identity records 9..11.
    fd = os.open(rec, os.O_RDONLY)
    head, _ = unpack_payload(read_record(fd, 0, rec), rec)
    os.close(fd)
    np.testing.assert_array_equal(head, [9, 12])


def test_rec_without_header_record_uses_image_labels(tmp_path):
    rec = str(tmp_path / "plain.rec")
    data = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    with RecordWriter(rec) as writer:
        for key, label in enumerate([5, 2, 9]):
            writer.write(key, pack_payload(label if key != 2 else [label, 0.5], data, key))
    assert [(s.label, s.line) for s in read_training_list(rec, "recordio").samples] == [(5, 1), (2, 2), (9, 3)]


def test_bad_idx_lines_name_the_line(tmp_path):
    rec, _ = make_rec(str(tmp_path))
    idx = str(tmp_path / "train.idx")
    lines = open(idx, encoding="utf-8").read().splitlines()
    size = os.path.getsize(rec)
    for bad, message in ((f"4\t{size + 8}", f"train.idx:5: offset {size + 8} is outside"),
                         ("4 12 x", "train.idx:5: expected 'key offset', got 3 fields"),
                         ("4\tabc", "train.idx:5: key and offset must be integers")):
        with open(idx, "w", encoding="utf-8") as f:
            f.write("\n".join(lines[:4] + [bad] + lines[5:]) + "\n")
        with pytest.raises(RecordIOError, match=message):
            read_training_list(rec, "recordio")
    with open(idx, "w", encoding="utf-8") as f:
        f.write("\n".join(lines[:4] + lines[5:]) + "\n")
    with pytest.raises(RecordIOError, match="train.idx: no entry for image key 4 of class 1"):
        read_training_list(rec, "recordio")
    with open(idx, "w", encoding="utf-8") as f:
        f.write("\n".join(lines[:4] + ["4\tabc"] + lines[5:]) + "\n")
    errors = []  # the checker's mode: the bad line and the image it loses are both reported
    samples = read_training_list(rec, "recordio", errors=errors).samples
    assert [s.label for s in samples] == [0, 0, 0, 2, 2, 2, 2]
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [
        (5, "key and offset must be integers"), (None, "no entry for image key 4 of class 1")]


def test_missing_idx_and_wrong_property(tmp_path):
    rec, _ = make_rec(str(tmp_path))
    with open(tmp_path / "property", "w", encoding="utf-8") as f:
        f.write("4,16,12")
    with pytest.raises(RecordIOError, match="property: says 4 classes but the header record .* lists 3"):
        read_training_list(rec, "recordio")
    os.remove(tmp_path / "train.idx")
    with pytest.raises(FileNotFoundError, match="RecordIO index not found: .*train.idx"):
        read_training_list(rec, "recordio")


def test_corrupt_record_is_an_image_decode_error(tmp_path):
    rec, _ = make_rec(str(tmp_path))
    sample = read_training_list(rec, "recordio").samples[2]
    with pytest.raises(ImageDecodeError, match=f"train.rec@{sample.offset + 3}: no record at byte {sample.offset + 3}"):
        load_sample_image(sample._replace(offset=sample.offset + 3))
    with open(rec, "r+b") as f:  # keep the record, spoil the PNG inside it
        f.seek(sample.offset + 8 + 24)
        f.write(b"\0" * 16)
    with pytest.raises(ImageDecodeError, match=f"cannot decode image: .*train.rec@{sample.offset}"):
        load_sample_image(sample)


def test_truncated_record(tmp_path):
    path = str(tmp_path / "cut.rec")
    with open(path, "wb") as f:
        f.write(header(0, 100) + b"only a few bytes")
    with pytest.raises(RecordIOError, match="record at byte 0 is truncated"):
        read_back(path, 0)
    with open(path, "wb") as f:
        f.write(header(2, 4) + b"abcd")
    with pytest.raises(RecordIOError, match="flag 2 out of sequence"):
        read_back(path, 0)


def test_writer_refuses_to_overwrite(tmp_path):
    rec, _ = make_rec(str(tmp_path))
    with pytest.raises(FileExistsError):
        RecordWriter(rec)
