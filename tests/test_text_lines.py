"""The one line reader every text format goes through: what it skips and how its errors name file and line."""

import pytest

from src.data.samples import LineError
from src.data.text_lines import line_failed, text_lines


class FormatError(ValueError):
    pass


def write_bytes(tmp_path, data):
    path = tmp_path / "list.txt"
    path.write_bytes(data)
    return str(path)


def test_bom_crlf_blank_lines_and_comments(tmp_path):
    path = write_bytes(tmp_path, b"\xef\xbb\xbfa 1\r\n\r\n  # note\r\n  b 2  \n")
    assert list(text_lines(path)) == [(1, "a 1"), (3, "# note"), (4, "b 2")]
    assert list(text_lines(path, comments=True)) == [(1, "a 1"), (4, "b 2")]


def test_non_utf8_line_raises_the_readers_error_or_is_collected(tmp_path):
    path = write_bytes(tmp_path, b"a 1\nb\xe9 2\nc 3\n")
    with pytest.raises(FormatError, match=r"list.txt:2: not UTF-8 text \(byte 0xe9 at column 2\)"):
        list(text_lines(path, FormatError))
    errors = []
    assert list(text_lines(path, FormatError, errors=errors)) == [(1, "a 1"), (3, "c 3")]
    assert [(e.path, e.line) for e in errors] == [(path, 2)]


def test_line_failed_raises_or_collects():
    with pytest.raises(FormatError, match="^f.txt:7: bad label$"):
        line_failed("f.txt", 7, "bad label", FormatError)
    errors = []
    line_failed("f.txt", 7, "bad label", FormatError, errors)
    assert errors == [LineError("f.txt", 7, "bad label")]
