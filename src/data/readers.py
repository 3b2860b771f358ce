"""Training list readers: each turns a list file into ``Sample`` records (path, label, landmarks)."""
import os
from collections import namedtuple

Sample = namedtuple("Sample", ["path", "label", "landmarks"])


class ListFormatError(ValueError):
    """A malformed line of a list file; the message names the file and line."""


def read_plain_list(list_path, root=""):
    """``relpath label`` per line (spaces or tabs); blank lines and ``#`` comments are skipped."""
    samples = []
    with open(list_path, "r", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 2:
                raise ListFormatError(f"{list_path}:{number}: expected 'path label', got {line!r}")
            try:
                label = int(fields[1])
            except ValueError as err:
                raise ListFormatError(f"{list_path}:{number}: label {fields[1]!r} is not an integer") from err
            samples.append(Sample(os.path.join(root, fields[0]), label, None))
    return samples


READERS = {"plain": read_plain_list}


def read_samples(list_path, list_format="plain", root=""):
    """Read a training list in ``list_format``; a missing file raises ``FileNotFoundError`` naming it."""
    if not os.path.isfile(list_path):
        raise FileNotFoundError(f"training list not found: {list_path}")
    return READERS[list_format](list_path, root)
