"""The records every reader produces.

A ``Sample`` names its image either by a file ``path`` or, for RecordIO, by the ``.rec`` ``path`` plus the byte
``offset`` of its record; ``line`` is the 1-based line of the list (or ``.idx``) that gave it, so that later
errors can name the file and line. A ``TrainingList`` holds the samples and, when the reader remapped the
dataset's own identities to dense labels 0..C-1 (CelebA ids, folder names), ``class_names[label]``.
"""

from collections import namedtuple

Sample = namedtuple("Sample", ["path", "label", "landmarks", "line", "offset"], defaults=(None, None))
TrainingList = namedtuple("TrainingList", ["samples", "class_names"])
LineError = namedtuple("LineError", ["path", "line", "message"])

CLASS_NAMES_FILE = "class_names.txt"


def sample_name(sample):
    """How messages name a sample's image: its path, or ``rec_path@offset`` for a RecordIO record."""
    return sample.path if sample.offset is None else f"{sample.path}@{sample.offset}"


def sample_origin(sample, list_path):
    """Where a sample came from: ``list_path:line`` when the reader knew the line, else ``list_path``."""
    return list_path if sample.line is None else f"{list_path}:{sample.line}"


def write_class_names(path, class_names):
    """``label<TAB>name`` per line: the mapping from dense training labels back to the dataset's identities."""
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{label}\t{name}\n" for label, name in enumerate(class_names))
