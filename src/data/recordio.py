"""InsightFace RecordIO face datasets (``train.rec`` + ``train.idx`` + ``property``), read and written without
MXNet, following the format as dmlc-core and MXNet's ``recordio`` module define it.

``.rec``: a sequence of records, each ``uint32 magic (0xCED7230A), uint32 lrec, data, zero padding to a
multiple of 4`` (little endian), where ``lrec = cflag << 29 | len(data)``. cflag 0 is a whole record; a payload
holding the magic word at a 4-byte aligned position is stored split there as parts with cflag 1 (first),
2 (middle), 3 (last), the magic word itself dropped: the reader joins the parts with it.
Payload (MXNet ``recordio.pack``): ``IRHeader = struct "<IfQQ" (flag, label, id, id2)``; when ``flag > 0`` the
label is the ``flag`` float32 numbers that follow the header; then the encoded image.
``.idx``: text lines ``key<TAB>byte offset``. ``property``: ``num_classes,height,width``.
InsightFace's header record (key 0) has labels ``[a, b]``: keys 1..a-1 are images and keys a..b-1 are identity
records, the one at key ``a + c`` holding the image key range ``[start, end)`` of class ``c``. Files without
it (key 0 an ordinary image) are read image by image, each label being the record's own (first) label.
"""

import os
import struct
import threading

import numpy as np

from src.data.samples import LineError, Sample, TrainingList
from src.data.text_lines import line_failed, text_lines

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
LENGTH_MASK = (1 << 29) - 1
IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)


class RecordIOError(ValueError):
    """A malformed RecordIO file; the message names the file and the byte offset or line."""


def encode_record(payload):
    """The bytes that store ``payload`` as one record (split at aligned magic words, padded to 4 bytes)."""
    parts, start, pos = [], 0, payload.find(MAGIC_BYTES)
    while pos >= 0:
        if pos % 4 == 0:
            parts.append(payload[start:pos])
            start = pos + 4
        pos = payload.find(MAGIC_BYTES, pos + 1)
    parts.append(payload[start:])
    chunks = []
    for number, part in enumerate(parts):
        if len(parts) == 1:
            cflag = 0
        else:
            cflag = 1 if number == 0 else 3 if number == len(parts) - 1 else 2
        chunks.append(struct.pack("<II", MAGIC, cflag << 29 | len(part)) + part)
    chunks.append(b"\0" * (-len(parts[-1]) % 4))
    return b"".join(chunks)


def read_record(fd, offset, name):
    """The payload of the record at byte ``offset`` of the open file ``fd`` (``name`` is used in errors)."""
    parts, position = [], offset
    while True:
        head = os.pread(fd, 8, position)
        if len(head) < 8:
            raise RecordIOError(f"{name}: truncated record header at byte {position}")
        magic, lrec = struct.unpack("<II", head)
        if magic != MAGIC:
            raise RecordIOError(f"{name}: no record at byte {position} (found 0x{magic:08x}, not the RecordIO magic)")
        cflag, length = lrec >> 29, lrec & LENGTH_MASK
        if cflag not in ((0, 1) if not parts else (2, 3)):
            raise RecordIOError(f"{name}: record part at byte {position} has flag {cflag} out of sequence")
        data = os.pread(fd, length, position + 8)
        if len(data) < length:
            raise RecordIOError(f"{name}: record at byte {position} is truncated ({len(data)} of {length} bytes)")
        parts.append(data)
        position += 8 + length + (-length % 4)
        if cflag in (0, 3):
            return MAGIC_BYTES.join(parts)


def pack_payload(label, image_bytes, key=0):
    """IRHeader + labels + image: ``label`` a number (flag 0) or a sequence of numbers (flag = its length)."""
    if np.ndim(label) == 0:
        return struct.pack(IR_FORMAT, 0, float(label), key, 0) + image_bytes
    labels = np.asarray(label, "<f4").ravel()
    return struct.pack(IR_FORMAT, labels.size, 0.0, key, 0) + labels.tobytes() + image_bytes


def unpack_payload(payload, name):
    """-> (label: float or float32 array, image bytes)."""
    if len(payload) < IR_SIZE:
        raise RecordIOError(f"{name}: record of {len(payload)} bytes is shorter than its {IR_SIZE}-byte header")
    flag, label, _, _ = struct.unpack_from(IR_FORMAT, payload)
    body = payload[IR_SIZE:]
    if flag == 0:
        return label, body
    if len(body) < 4 * flag:
        raise RecordIOError(f"{name}: header announces {flag} labels but the record is too short")
    return np.frombuffer(body, "<f4", flag).copy(), body[4 * flag :]


class RecordWriter:
    """Appends records to a new ``.rec`` and their offsets to its ``.idx`` (refuses to overwrite either)."""

    def __init__(self, rec_path):
        self.rec_path, self.idx_path = rec_path, os.path.splitext(rec_path)[0] + ".idx"
        self._rec = open(rec_path, "x+b")
        self._idx = open(self.idx_path, "x", encoding="utf-8")

    def write(self, key, payload):
        self._idx.write(f"{key}\t{self._rec.tell()}\n")
        self._rec.write(encode_record(payload))

    def rewrite(self, offset, payload):
        """Replace the record written at byte ``offset`` by ``payload``, which must encode to the same size."""
        self._rec.flush()
        end = self._rec.tell()
        encoded = encode_record(payload)
        self._rec.seek(offset)
        if len(encoded) != len(encode_record(read_record(self._rec.fileno(), offset, self.rec_path))):
            raise ValueError(f"{self.rec_path}: the record at byte {offset} cannot change size")
        self._rec.write(encoded)
        self._rec.seek(end)

    def close(self):
        self._rec.close()
        self._idx.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FaceRecWriter:
    """Writes an InsightFace dataset image by image, labels in non-decreasing order (0..num_classes-1; a class may
    end up empty): the header record first (key 0, rewritten in place at ``close``, when the counts are known),
    the images (keys 1..n), then one identity record per class; ``property`` beside the file. Refuses to
    overwrite any of the three files."""

    def __init__(self, rec_path, num_classes, image_size):
        self.rec_path, self.num_classes, self.image_size = rec_path, num_classes, image_size
        self.property_path = os.path.join(os.path.dirname(rec_path), "property")
        if os.path.exists(self.property_path):
            raise FileExistsError(f"{self.property_path} already exists; write the dataset into a new folder")
        self.writer = RecordWriter(rec_path)
        self.writer.write(0, self._header(0))
        self.labels = []

    def _header(self, count):
        return pack_payload([count + 1, count + 1 + self.num_classes], b"")

    def add(self, data, label):
        """Append one encoded image of class ``label``."""
        if not 0 <= label < self.num_classes or (self.labels and label < self.labels[-1]):
            raise ValueError(
                f"label {label} out of order or range (classes 0..{self.num_classes - 1}, previous "
                f"{self.labels[-1] if self.labels else None})"
            )
        self.labels.append(label)
        self.writer.write(len(self.labels), pack_payload(label, data, len(self.labels)))

    def close(self):
        """Write the identity records and the final header; returns the number of images."""
        count = len(self.labels)
        starts = np.searchsorted(self.labels, np.arange(self.num_classes + 1)) + 1
        for label in range(self.num_classes):
            self.writer.write(count + 1 + label, pack_payload([starts[label], starts[label + 1]], b""))
        self.writer.rewrite(0, self._header(count))
        self.writer.close()
        with open(self.property_path, "x", encoding="utf-8") as f:
            f.write(f"{self.num_classes},{self.image_size[0]},{self.image_size[1]}")
        return count


def parse_index_line(fields, rec_size):
    if len(fields) != 2:
        raise ValueError(f"expected 'key offset', got {len(fields)} fields")
    try:
        key, offset = int(fields[0]), int(fields[1])
    except ValueError:
        raise ValueError("key and offset must be integers") from None
    if not 0 <= offset < rec_size:
        raise ValueError(f"offset {offset} is outside the .rec file ({rec_size} bytes)")
    return key, offset


def read_index(idx_path, rec_size, errors=None):
    """{key: (offset, line)} from a ``.idx``; bad lines raise naming the file and line (or go to ``errors``)."""
    if not os.path.isfile(idx_path):
        raise FileNotFoundError(f"RecordIO index not found: {idx_path} (expected next to the .rec file)")
    index = {}
    for number, text in text_lines(idx_path, RecordIOError, errors=errors):
        try:
            key, offset = parse_index_line(text.split(), rec_size)
        except ValueError as err:
            line_failed(idx_path, number, f"{err}: {text!r}", RecordIOError, errors)
            continue
        index[key] = (offset, number)
    return index


def read_property(rec_path):
    """(num_classes, height, width) from the ``property`` file beside ``rec_path``, or None when absent."""
    path = os.path.join(os.path.dirname(rec_path), "property")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read().strip()
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise RecordIOError(f"{path}: expected 'num_classes,height,width', got {text!r}")
    return values


def _record(fd, index, key, rec_path, idx_path):
    if key not in index:
        raise RecordIOError(f"{idx_path}: no entry for key {key}, which the header record of {rec_path} refers to")
    offset, _ = index[key]
    return unpack_payload(read_record(fd, offset, rec_path), f"{rec_path}@{offset}")


def read_face_rec(rec_path, errors=None):
    """A ``TrainingList`` of the images of an InsightFace ``.rec`` (samples carry the record offsets)."""
    idx_path = os.path.splitext(rec_path)[0] + ".idx"
    index = read_index(idx_path, os.path.getsize(rec_path), errors)
    samples = []
    fd = os.open(rec_path, os.O_RDONLY)
    try:
        header = _record(fd, index, 0, rec_path, idx_path)[0] if 0 in index else None
        if np.ndim(header) == 1 and header.size >= 2:
            first_identity, end = int(header[0]), int(header[1])
            for label, key in enumerate(range(first_identity, end)):
                start, stop = _record(fd, index, key, rec_path, idx_path)[0][:2].astype(int)
                for image_key in range(start, stop):
                    if image_key not in index:
                        message = f"no entry for image key {image_key} of class {label}"
                        if errors is None:
                            raise RecordIOError(f"{idx_path}: {message}")
                        errors.append(LineError(idx_path, None, message))
                        continue
                    offset, line = index[image_key]
                    samples.append(Sample(rec_path, label, None, line, offset))
            num_classes = end - first_identity
        else:
            for key in sorted(index):
                offset, line = index[key]
                label, _ = unpack_payload(read_record(fd, offset, rec_path), f"{rec_path}@{offset}")
                samples.append(Sample(rec_path, int(np.ravel(label)[0]), None, line, offset))
            num_classes = None
    finally:
        os.close(fd)
    prop = read_property(rec_path)
    if prop is not None and num_classes is not None and prop[0] != num_classes:
        raise RecordIOError(
            f"{os.path.join(os.path.dirname(rec_path), 'property')}: says {prop[0]} classes but "
            f"the header record of {rec_path} lists {num_classes} identities"
        )
    return TrainingList(samples, None)


class RecordFiles:
    """One read-only descriptor per (process, .rec file), shared by the pipeline's threads (``os.pread``)."""

    def __init__(self):
        self._fds = {}
        self._lock = threading.Lock()

    def fd(self, path):
        key = (os.getpid(), path)
        with self._lock:
            if key not in self._fds:
                self._fds[key] = os.open(path, os.O_RDONLY)
            return self._fds[key]


OPEN_RECORD_FILES = RecordFiles()


def read_image_bytes(rec_path, offset):
    """The encoded image of the record at ``offset`` of ``rec_path``."""
    name = f"{rec_path}@{offset}"
    return unpack_payload(read_record(OPEN_RECORD_FILES.fd(rec_path), offset, name), name)[1]
