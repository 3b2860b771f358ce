"""Training lists as they come from other people's machines (see the fault table, docs/faults.md):
a Windows byte-order mark and CR LF line ends, a list in Latin-1, paths with spaces, labels that start at 1 or
skip numbers, the same image listed twice."""

import logging

import numpy as np
import pytest

from src.data.check import DataCheckError, load_training_list
from src.data.readers import ListFormatError, format_line, read_training_list
from tests.face_data import random_image, write_image


@pytest.fixture
def root(tmp_path):
    rng = np.random.default_rng(0)
    for relpath in ("Ann Lee/1.png", "Ann Lee/2.png", "Bob/3.png", "Bob/4.png", "Zoë/5.png"):
        write_image(str(tmp_path / "root" / relpath), random_image(rng))
    return str(tmp_path / "root")


def test_windows_bom_and_crlf_list(root, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes("\ufeffBob/3.png 0\r\nBob/4.png 0\r\nZoë/5.png 1\r\n".encode("utf-8"))
    samples, num_classes = load_training_list(str(listing), "plain", root)
    assert [s.path[len(root) + 1 :] for s in samples] == ["Bob/3.png", "Bob/4.png", "Zoë/5.png"] and num_classes == 2


def test_latin1_list_names_the_line(root, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes("Bob/3.png 0\nZoë/5.png 1\n".encode("latin-1"))
    with pytest.raises(
        ListFormatError,
        match=r"list.txt:2: not UTF-8 text \(byte 0xeb at column 3\): save the list "
        r"as UTF-8",
    ):
        read_training_list(str(listing), "plain", root)


def test_paths_with_spaces_need_tabs_and_the_error_says_so(root, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("Ann Lee/1.png 0\n", encoding="utf-8")
    with pytest.raises(
        ListFormatError,
        match="list.txt:1: expected 'path label', got 3 fields; a path with spaces[?] separate the fields with a tab",
    ):
        read_training_list(str(listing), "plain", root)
    listing.write_text(
        format_line("plain", "Ann Lee/1.png", 0) + "\n" + format_line("plain", "Bob/3.png", 1) + "\n", encoding="utf-8"
    )
    assert [s.path[len(root) + 1 :] for s in read_training_list(str(listing), "plain", root).samples] == [
        "Ann Lee/1.png",
        "Bob/3.png",
    ]
    listing.write_text(format_line("sphereface", "Ann Lee/2.png", 0, np.ones((5, 2))) + "\n", encoding="utf-8")
    assert read_training_list(str(listing), "sphereface", root).samples[0].path[len(root) + 1 :] == "Ann Lee/2.png"


def test_one_based_labels_get_a_hint(root, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("Bob/3.png 1\nBob/4.png 1\nZoë/5.png 2\n", encoding="utf-8")
    with pytest.raises(
        DataCheckError,
        match=r"(?s)list.txt:3: label 2 of .* is outside 0..1 \(num_classes=2\).*"
        r"the labels run from 1 to 2: they must start at 0",
    ):
        load_training_list(str(listing), "plain", root, num_classes=2)


def test_labels_that_skip_numbers_are_named(root, tmp_path, caplog):
    listing = tmp_path / "list.txt"
    listing.write_text("Bob/3.png 0\nBob/4.png 0\nZoë/5.png 3\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        _, num_classes = load_training_list(str(listing), "plain", root)
    assert num_classes == 4 and "2 of the num_classes=4 labels have no image (e.g. [1, 2])" in caplog.text


def test_duplicate_lines_warn_and_conflicting_labels_stop(root, tmp_path, caplog):
    listing = tmp_path / "list.txt"
    listing.write_text("Bob/3.png 0\nBob/4.png 0\nBob/3.png 0\nZoë/5.png 1\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        samples, _ = load_training_list(str(listing), "plain", root)
    assert len(samples) == 4 and "1 images are listed more than once" in caplog.text and "lines [1, 3]" in caplog.text
    listing.write_text("Bob/3.png 0\nBob/4.png 0\nBob/3.png 1\nZoë/5.png 1\n", encoding="utf-8")
    with pytest.raises(
        DataCheckError,
        match=r"list.txt:1: .*Bob/3.png is listed with different labels \[0, 1\] on "
        r"lines \[1, 3\]",
    ):
        load_training_list(str(listing), "plain", root)
