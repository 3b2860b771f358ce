"""Dataset checks: the cheap one ``train.py`` runs before training, and the full report of
``tools/check_dataset.py``.

Cheap (no image decoded): every label in 0..num_classes-1, every image file present and not empty, no image
listed with two labels, and the landmarks of every sample plausible (finite, eyes above the mouth, inside the
image give or take a margin; the size read from the file's header); a failure stops the run with an error naming
the list file and line. Full: also decodes every image (threads), and reports counts, the histogram of images per
class, malformed lines, label gaps, duplicate paths and implausible landmarks, each with its line number.
"""

import logging
import os
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from src.data.image_header import image_size
from src.data.image_io import ImageDecodeError
from src.data.images import load_sample_image
from src.data.landmarks import landmark_problem
from src.data.readers import read_training_list
from src.data.samples import CLASS_NAMES_FILE, sample_name, sample_origin, write_class_names

LOG = logging.getLogger("facerec.data")
HISTOGRAM_EDGES = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)
ERROR_KINDS = (
    "malformed_lines",
    "labels_out_of_range",
    "missing_files",
    "undecodable_images",
    "bad_landmarks",
    "conflicting_duplicates",
)
WARNING_KINDS = ("label_gaps", "duplicate_paths")
SHOWN = 5
MAX_UPSCALE = 2.0  # aligned (landmark-free) images enlarged more than this are named at start
MAX_ASPECT_CHANGE = 0.1  # ... and those whose width/height differs from the input's by more than 10%


class DataCheckError(ValueError):
    """The training list is unusable; the message names the list file and line of each problem shown."""


def class_count(samples, num_classes, class_names=None):
    """The configured count, else the reader's class names, else the largest label + 1."""
    if num_classes is not None:
        return num_classes
    if class_names is not None:
        return len(class_names)
    return max((s.label for s in samples), default=-1) + 1


def labels_out_of_range(samples, num_classes):
    return [s for s in samples if not 0 <= s.label < num_classes]


def missing_files(samples):
    """Samples whose image file does not exist (RecordIO records were checked against the file by the reader)."""
    return [s for s in samples if s.offset is None and not os.path.isfile(s.path)]


def empty_files(samples):
    """Samples whose image file is there but empty (0 bytes: a failed copy or download)."""
    return [s for s in samples if s.offset is None and os.path.isfile(s.path) and os.path.getsize(s.path) == 0]


def _header_landmark_problem(sample):
    shape = image_size(sample.path) if sample.offset is None else None
    return landmark_problem(sample.landmarks, shape)


def landmark_problems(samples, workers=8):
    """[(sample, problem)] for the samples whose landmarks ``landmark_problem`` refuses (image sizes read from
    the file headers, ``workers`` threads); samples without landmarks or a usable file are left out."""
    usable = {id(s) for s in missing_files(samples) + empty_files(samples)}
    marked = [s for s in samples if s.landmarks is not None and id(s) not in usable]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(pool.map(_header_landmark_problem, marked, chunksize=256))
    return [(s, problem) for s, problem in zip(marked, found) if problem]


def resize_warning(samples, input_size, list_path, workers=8):
    """The start-of-run warning (or None) about images without landmarks, which are resized to ``input_size``
    (height, width) as they are: how many need more than MAX_UPSCALE x enlarging (a thumbnail, a 1x1 image), and
    how many have another aspect than the input (raw photos instead of aligned faces). Sizes from file headers."""
    plain = [s for s in samples if s.landmarks is None and s.offset is None and os.path.isfile(s.path)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        sizes = list(pool.map(image_size, [s.path for s in plain], chunksize=256))
    height, width = input_size
    upscaled, reshaped = [], []
    for sample, size in zip(plain, sizes):
        if size is None:
            continue
        if max(height / size[0], width / size[1]) > MAX_UPSCALE:
            upscaled.append((sample, size))
        if abs(np.log((size[1] / size[0]) / (width / height))) > np.log1p(MAX_ASPECT_CHANGE):
            reshaped.append((sample, size))
    if not (upscaled or reshaped):
        return None
    parts = [
        f"{len(found)} of the {len(plain)} images without landmarks {what} (e.g. {sample_origin(s, list_path)}: "
        f"{sample_name(s)} is {w}x{h})"
        for found, what in (
            (upscaled, f"are enlarged more than {MAX_UPSCALE:g}x to the {width}x{height} input"),
            (reshaped, f"have another aspect than the {width}x{height} input and are stretched"),
        )
        if found
        for s, (h, w) in found[:1]
    ]
    return (
        f"{list_path}: " + "; ".join(parts) + ": a list without landmarks is taken as faces already aligned to the "
        "input size; for raw photos, detect landmarks (tools/detect_landmarks.py) and train with list_format "
        "sphereface"
    )


def check_training_list(training_list, num_classes, list_path):
    """The start-of-run check: returns num_classes, or raises ``DataCheckError`` naming the file and line of
    the first out-of-range labels and missing images."""
    samples = training_list.samples
    if not samples:
        raise DataCheckError(f"{list_path}: the training list has no images")
    num_classes = class_count(samples, num_classes, training_list.class_names)
    problems = [
        f"{sample_origin(s, list_path)}: label {s.label} of {sample_name(s)} is outside 0..{num_classes - 1}"
        f" (num_classes={num_classes})"
        for s in labels_out_of_range(samples, num_classes)
    ]
    missing = missing_files(samples)
    windows = [s for s in missing if "\\" in s.path]
    if windows:
        problems.append(
            backslash_problem(len(windows), sample_origin(windows[0], list_path), sample_name(windows[0]), list_path)
        )
    problems += [f"{sample_origin(s, list_path)}: image not found: {s.path}" for s in missing if "\\" not in s.path]
    problems += [
        f"{sample_origin(s, list_path)}: image file is empty (0 bytes): {s.path}" for s in empty_files(samples)
    ]
    problems += [
        f"{sample_origin(s, list_path)}: {sample_name(s)}: {problem}" for s, problem in landmark_problems(samples)
    ]
    repeated = duplicates(samples)
    problems += [
        f"{list_path}:{d['lines'][0]}: {d['path']} is listed with different labels {d['labels']} on lines {d['lines']}"
        for d in repeated
        if d["conflicting"]
    ]
    if problems:
        more = f"\n... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise DataCheckError(
            f"{len(problems)} problem(s) in the training list (run tools/check_dataset.py for a "
            f"full report):\n" + "\n".join(problems[:SHOWN]) + more + one_based_hint(samples, num_classes)
        )
    if repeated:
        LOG.warning(
            "%s: %d images are listed more than once and are read that many times an epoch (e.g. %s on lines %s)",
            list_path,
            len(repeated),
            repeated[0]["path"],
            repeated[0]["lines"],
        )
    gaps = sorted(set(range(num_classes)) - {s.label for s in samples})
    if gaps:
        LOG.warning(
            "%s: %d of the num_classes=%d labels have no image (e.g. %s); their classes are trained as negatives only",
            list_path,
            len(gaps),
            num_classes,
            gaps[:SHOWN],
        )
    return num_classes


def backslash_problem(count, where, name, list_path):
    """One message for the ``count`` missing images whose paths hold Windows backslashes, the first ``name`` at
    ``where`` (instead of one message per line)."""
    return (
        f"{where}: {count} image path(s) contain '\\' and are not found (e.g. {name}): a list written on Windows? "
        f"separate folders with '/', e.g. sed -i 's#\\\\#/#g' {list_path}"
    )


def one_based_hint(samples, num_classes):
    """A hint when the labels look numbered from 1 (1..num_classes) instead of 0."""
    labels = [s.label for s in samples]
    if min(labels) == 1 and max(labels) == num_classes:
        return (
            f"\nthe labels run from 1 to {num_classes}: they must start at 0 (subtract 1 from each, or use "
            f"list_format celeba, which renumbers 1-based ids)"
        )
    return ""


def load_training_list(list_path, list_format, root="", num_classes=None, class_map_dir=None, image_size=None):
    """Read and check the training list; returns (samples, num_classes). With the input ``image_size``
    (height, width), images it would resize badly are counted in one warning (``resize_warning``).

    When the reader remapped the dataset's identities (CelebA, identity folders), the mapping is written to
    ``class_map_dir/class_names.txt`` (``label<TAB>identity`` per line) when a folder is given.
    """
    training_list = read_training_list(list_path, list_format, root)
    num_classes = check_training_list(training_list, num_classes, list_path)
    warning = resize_warning(training_list.samples, image_size, list_path) if image_size else None
    if warning:
        LOG.warning("%s", warning)
    if class_map_dir and training_list.class_names is not None:
        os.makedirs(class_map_dir, exist_ok=True)
        path = os.path.join(class_map_dir, CLASS_NAMES_FILE)
        write_class_names(path, training_list.class_names)
        LOG.info(
            "wrote the mapping of %d training labels to %s identities to %s",
            len(training_list.class_names),
            list_format,
            path,
        )
    return training_list.samples, num_classes


def images_per_class_histogram(counts):
    """[{'images': '5-9', 'classes': n}, ...] over the classes that have images."""
    values = np.array(list(counts), np.int64)
    rows = []
    for low, high in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:] + (None,)):
        inside = (values >= low) & (values < high) if high else values >= low
        name = str(low) if high == low + 1 else f"{low}+" if high is None else f"{low}-{high - 1}"
        rows.append({"images": name, "classes": int(inside.sum())})
    return rows


def entry(sample, **extra):
    """A report row naming a sample by line and path."""
    return dict({"line": sample.line, "path": sample_name(sample)}, **extra)


def duplicates(samples):
    by_path = defaultdict(list)
    for sample in samples:
        by_path[sample_name(sample)].append(sample)
    return [
        {
            "path": name,
            "lines": [s.line for s in group],
            "labels": [s.label for s in group],
            "conflicting": len({s.label for s in group}) > 1,
        }
        for name, group in by_path.items()
        if len(group) > 1
    ]


def _decode(sample):
    try:
        return load_sample_image(sample).shape, None
    except ImageDecodeError as err:
        return None, str(err)


def decode_all(samples, workers=1, log_every=10.0):
    """[(shape or None, error or None)] for ``samples``, decoding with ``workers`` threads."""
    results = []
    start = last = time.time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(_decode, samples, chunksize=64) if workers > 1 else map(_decode, samples):
            results.append(result)
            now = time.time()
            if now - last >= log_every:
                LOG.info("decoded %d/%d images, %.0f img/s", len(results), len(samples), len(results) / (now - start))
                last = now
    return results


def dataset_report(list_path, list_format, root="", num_classes=None, decode=True, workers=1):
    """Everything ``tools/check_dataset.py`` reports, as a JSON-ready dict (``ok`` is False on any error)."""
    malformed = []
    training_list = read_training_list(list_path, list_format, root, errors=malformed)
    samples = training_list.samples
    classes = class_count(samples, num_classes, training_list.class_names)
    counts = Counter(s.label for s in samples)
    missing = missing_files(samples)
    duplicate = duplicates(samples)
    report = {
        "list": list_path,
        "format": list_format,
        "root": root,
        "images": len(samples),
        "classes": classes,
        "classes_with_images": len(counts),
        "images_per_class": {
            "min": min(counts.values(), default=0),
            "max": max(counts.values(), default=0),
            "mean": len(samples) / max(len(counts), 1),
            "histogram": images_per_class_histogram(counts.values()),
        },
        "malformed_lines": [{"file": e.path, "line": e.line, "error": e.message} for e in malformed],
        "labels_out_of_range": [entry(s, label=s.label) for s in labels_out_of_range(samples, classes)],
        "label_gaps": [label for label in range(classes) if label not in counts],
        "duplicate_paths": duplicate,
        "conflicting_duplicates": [d for d in duplicate if d["conflicting"]],
        "missing_files": [entry(s) for s in missing],
        "undecodable_images": None,
        "bad_landmarks": None,
    }
    if decode:
        missing_ids = {id(s) for s in missing}
        present = [s for s in samples if id(s) not in missing_ids]
        decoded = decode_all(present, workers)
        report["undecodable_images"] = [entry(s, error=err) for s, (_, err) in zip(present, decoded) if err]
        report["bad_landmarks"] = [
            entry(s, image_size=list(shape[:2]), landmarks=np.asarray(s.landmarks).round(2).tolist(), problem=problem)
            for s, (shape, _) in zip(present, decoded)
            if shape is not None and s.landmarks is not None
            for problem in [landmark_problem(s.landmarks, shape)]
            if problem
        ]
    report["errors"] = {kind: len(report[kind] or []) for kind in ERROR_KINDS}
    report["warnings"] = {kind: len(report[kind]) for kind in WARNING_KINDS}
    report["ok"] = bool(samples) and not any(report["errors"].values())
    return report
