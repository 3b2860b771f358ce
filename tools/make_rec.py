"""Write an InsightFace RecordIO dataset (``train.rec``, ``train.idx``, ``property``) without MXNet, from an
identity-folder tree or any training list the project reads.

  python tools/make_rec.py --input data/faces_aligned --output data/faces_rec --image_size 112 112
  python tools/make_rec.py --input casia_landmark.txt --format sphereface --root CASIA-WebFace \\
      --output data/casia_rec --image_size 112 112 --workers 8
  python tools/make_rec.py --input lfw/images_150 --landmarks lfw_landmark_150.txt --output data/lfw_rec

--input is an identity tree (``root/<identity>/<image>``, list format ``folder``, the default for a folder) or a
list (``plain`` default, ``sphereface``, ``arcface``, ``celeba``; paths under --root). Images with landmarks (a
``sphereface`` list, or --landmarks ``relpath x1 y1 ... x5 y5`` with paths relative to the tree or --root) are
aligned to the template of --image_size and encoded (--encoding jpg, quality 95, or png); images without are
taken as aligned: kept byte for byte when of --image_size, else refused unless --fit template|resize. Labels are
the reader's (0..C-1; the tree's sorted folder names, written to ``class_names.txt``); images are stored grouped
by label, as insightface's datasets are. Unreadable images are skipped, logged and counted. Train on the result
with ``--list_format recordio --train_list OUTPUT/train.rec``.
"""

import argparse
import logging
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # Run as a script: make `src` importable.
    sys.path.insert(0, ROOT)
from src.data.face_encode import FaceTask, add_face_options, try_prepare_face  # noqa: E402
from src.data.landmarks import landmarks_for, read_landmarks  # noqa: E402
from src.data.parallel import ordered_map  # noqa: E402
from src.data.readers import READERS, read_training_list  # noqa: E402
from src.data.recordio import FaceRecWriter  # noqa: E402
from src.data.samples import CLASS_NAMES_FILE, write_class_names  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402

LOG = logging.getLogger("facerec.make_rec")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="identity tree (folder) or training list (file)")
    parser.add_argument(
        "--format",
        choices=[f for f in READERS if f != "recordio"],
        help="list format of --input (default: folder for a folder, else plain)",
    )
    parser.add_argument("--root", default="", help="folder the list's image paths start from")
    parser.add_argument("--landmarks", help="5-point landmark file to align the images with")
    parser.add_argument("--output", required=True, help="folder for train.rec, train.idx, property (new files)")
    add_face_options(parser, size_help="face size (112 112: insightface's ArcFace crops; 112 96: SphereFace)")
    args = parser.parse_args(argv)
    args.format = args.format or ("folder" if os.path.isdir(args.input) else "plain")
    return args


def face_tasks(args, samples):
    """A ``FaceTask`` per sample, in sample order; landmarks from the list or from --landmarks."""
    table = read_landmarks(args.landmarks) if args.landmarks else None
    base = args.input if args.format == "folder" else args.root
    tasks = []
    for sample in samples:
        points = sample.landmarks
        if table is not None:
            relpath = os.path.relpath(sample.path, base).replace(os.sep, "/")
            points = landmarks_for(table, relpath, args.landmarks)
        tasks.append(
            FaceTask(
                sample.path,
                tuple(args.image_size),
                None if points is None else tuple(float(v) for v in points.ravel()),
                args.fit,
                args.encoding,
                args.quality,
            )
        )
    return tasks


def make_rec(args):
    """Write the dataset; returns {'images', 'classes', 'skipped': [error messages], 'rec'}."""
    training = read_training_list(args.input, args.format, args.root)
    samples = sorted(training.samples, key=lambda s: s.label)  # stable: list order within a class
    if not samples:
        raise ValueError(f"{args.input}: no images")
    num_classes = max(s.label for s in samples) + 1
    os.makedirs(args.output, exist_ok=True)
    rec = os.path.join(args.output, "train.rec")
    for path in (rec, os.path.join(args.output, "train.idx")):
        if os.path.exists(path):
            raise FileExistsError(f"{path} already exists; write the dataset into a new folder")
    tasks = face_tasks(args, samples)
    LOG.info(
        "%d images of %d classes from %s -> %s (%dx%d, %d worker(s))",
        len(samples),
        num_classes,
        args.input,
        rec,
        args.image_size[0],
        args.image_size[1],
        args.workers,
    )
    writer = FaceRecWriter(rec, num_classes, args.image_size)
    skipped = []
    for sample, (data, error) in zip(samples, ordered_map(try_prepare_face, tasks, args.workers), strict=True):
        if data is None:
            LOG.warning("skipped: %s", error)
            skipped.append(error)
        else:
            writer.add(data, sample.label)
    count = writer.close()
    if training.class_names is not None:
        write_class_names(os.path.join(args.output, CLASS_NAMES_FILE), training.class_names)
    return {"images": count, "classes": num_classes, "skipped": skipped, "rec": rec}


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    result = make_rec(parse_args(argv))
    print(
        f"{result['rec']}: {result['images']} images of {result['classes']} classes; {len(result['skipped'])} skipped",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
