"""Write an insightface-compatible verification ``.bin`` (``lfw.bin``, ``cfp_fp.bin`` style) without MXNet: a
pickle of ``(list of encoded images, list of bool issame)``, pair i being images 2i and 2i+1.

  python tools/make_bin.py --pairs pairs.txt --root lfw_aligned_112 --output lfw.bin
  python tools/make_bin.py --pairs ../shared/data/lfw/pairs.txt --root ../shared/data/lfw/images_150 \\
      --landmarks ../shared/data/lfw/lfw_landmark_150.txt --output lfw.bin --image_size 112 112

--pairs is an LFW pairs file (View 1 or View 2) or a ``label path1 path2`` list (--format detects which), images
under --root. With --landmarks the faces are aligned to the template of --image_size (112x112, insightface's,
by default) and encoded (--encoding jpg quality 95, or png); without, they must be aligned faces of
--image_size (kept byte for byte) unless --fit template|resize. Any missing or unreadable image stops the run
naming the pairs file and line (a .bin has no way to mark a pair unusable); --skip_missing leaves out the pairs
that name an image not on disk instead (LFW's images_150 lacks one image of pairsDevTest.txt). The pairs are
written fold by fold (file order within a fold), so the .bin's 10 contiguous folds are the file's folds (exactly
when they have equal sizes): a View 1 file's equal shares of same and different lines, View 2's blocks. Pickle
protocol 4 (Python >= 3.4, what insightface's ``pickle.load(f, encoding='bytes')`` reads); eval.py reads it with
``--eval_pairs X.bin``.
"""

import argparse
import logging
import os
import pickle
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # Run as a script: make `src` importable.
    sys.path.insert(0, ROOT)
from src.data.align_files import write_atomic  # noqa: E402
from src.data.face_encode import FaceTask, add_face_options, try_prepare_face  # noqa: E402
from src.data.landmarks import read_landmarks  # noqa: E402
from src.data.parallel import ordered_map  # noqa: E402
from src.eval.pair_images import PairImageError  # noqa: E402
from src.eval.pairs import drop_missing_images  # noqa: E402
from src.eval.sources import read_pair_set  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402

LOG = logging.getLogger("facerec.make_bin")
PICKLE_PROTOCOL = 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", required=True, help="LFW pairs file or 'label path1 path2' list")
    parser.add_argument("--format", choices=["auto", "lfw", "list"], default="auto", help="format of --pairs")
    parser.add_argument("--root", default="", help="folder the pairs' images are under")
    parser.add_argument("--image_ext", default=".jpg", help="image extension of LFW pairs files")
    parser.add_argument("--landmarks", help="5-point landmark file 'relpath x1 y1 ... x5 y5' to align with")
    parser.add_argument("--output", required=True, help=".bin file to write (must not exist)")
    add_face_options(parser, size_help="face size (insightface's sets are 112 112)")
    parser.add_argument(
        "--skip_missing",
        action="store_true",
        help="leave out the pairs naming an image that is not on disk (logged), as eval.py does",
    )
    return parser.parse_args(argv)


def make_bin(args):
    """Write the .bin; returns (number of pairs, number of same pairs)."""
    if os.path.exists(args.output):
        raise FileExistsError(f"{args.output} already exists")
    pair_set = read_pair_set(args.pairs, args.format, args.root, args.image_ext)
    if args.skip_missing:
        pair_set, missing = drop_missing_images(pair_set)
        for relpath in missing:
            LOG.warning("image not found, its pairs are left out: %s", os.path.join(args.root, relpath))
    table = read_landmarks(args.landmarks) if args.landmarks else None
    tasks = []
    for relpath, where in zip(pair_set.relpaths, pair_set.where):
        points = None
        if table is not None:
            if relpath not in table:
                raise PairImageError(f"{args.landmarks}: no landmarks for image {relpath} (used at {where})")
            points = tuple(float(v) for v in table[relpath].ravel())
        tasks.append(
            FaceTask(
                os.path.join(args.root, relpath), tuple(args.image_size), points, args.fit, args.encoding, args.quality
            )
        )
    LOG.info("%d pairs, %d images from %s -> %s", len(pair_set), len(tasks), args.pairs, args.output)
    encoded = []
    for where, (data, error) in zip(pair_set.where, ordered_map(try_prepare_face, tasks, args.workers), strict=True):
        if data is None:
            raise PairImageError(f"{where}: {error}")
        encoded.append(data)
    order = np.argsort(pair_set.folds, kind="stable")  # fold by fold: contiguous folds = the file's folds
    bins = [encoded[i] for k in order for i in (pair_set.first[k], pair_set.second[k])]
    issame = [bool(pair_set.issame[k]) for k in order]
    write_atomic(args.output, pickle.dumps((bins, issame), protocol=PICKLE_PROTOCOL))
    return len(pair_set), int(pair_set.issame.sum())


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    pairs, same = make_bin(args)
    print(f"{args.output}: {pairs} pairs ({same} same)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
