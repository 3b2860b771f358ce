"""Reading a text file line by line, with errors that name the file and line.

Every line-oriented file the package reads (training lists, landmark files, a RecordIO ``.idx``, pair lists,
class-name maps, IJB protocol files, the inference harness's ``index.txt``) goes through ``text_lines``: UTF-8
(a byte-order mark of a Windows editor dropped, CR LF ends taken as LF), surrounding whitespace trimmed, blank
lines skipped and, for the formats that have them, ``#`` comments. ``line_failed`` is the one way to report a bad
line: ``path:line: message`` raised as the reader's own error class, or collected for the dataset checker.
"""

from src.data.samples import LineError


def decode_line(raw, number):
    """Line ``number`` (bytes) as stripped text: UTF-8, a byte-order mark (Windows editors) dropped from the first
    line, CR LF ends taken as LF; other encodings raise ``ValueError`` saying where."""
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
    except UnicodeDecodeError as err:
        raise ValueError(
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}): save the list "
            f"as UTF-8, e.g. iconv -f latin1 -t utf-8"
        ) from None


def line_failed(path, number, message, error=ValueError, errors=None):
    """Raise ``error("path:number: message")``; or, when ``errors`` is a list, append a ``LineError`` to it (the
    caller then goes on with the next line)."""
    if errors is None:
        raise error(f"{path}:{number}: {message}") from None
    errors.append(LineError(path, number, message))


def text_lines(path, error=ValueError, comments=False, errors=None):
    """Yield (line number from 1, stripped text) of each non-blank line of ``path``, skipping ``#`` comment lines
    when ``comments``. A line that is not UTF-8 goes to ``line_failed`` with ``error`` and ``errors``."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                text = decode_line(raw, number)
            except ValueError as err:
                line_failed(path, number, str(err), error, errors)
                continue
            if text and not (comments and text.startswith("#")):
                yield number, text
