"""Write a training list from an identity-folder tree ``root/<identity>/<image>`` (seed arcface's
txt_annotation.py role).

Classes are the identity folders in sorted order (label = position), images sorted within each; the mapping
``label<TAB>identity`` is written beside the list (``<output>.classes.txt`` unless --class_map). With
--landmarks the list is a sphereface landmark list (``relpath label x1 y1 ... x5 y5``) and images without
landmarks are left out (and counted). --people keeps only the identities named in an LFW people file;
--min_images keeps identities with at least that many (listed) images. Paths are relative to --root (use it as
``train_root``), or absolute with --absolute. An existing output is never overwritten.

LFW View 1 DevTrain people with >= 4 images (430 identities, 4,964 images), for the LFW training recipe:
  python tools/make_list.py --root ../shared/data/lfw/images_150 \\
      --people ../shared/data/lfw/peopleDevTrain.txt --min_images 4 \\
      --landmarks ../shared/data/lfw/lfw_landmark_150.txt --output data/lfw_devtrain4.txt
"""

import argparse
import logging
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # Run as a script: make `src` importable.
    sys.path.insert(0, ROOT)
from src.data.identity_tree import read_people, scan_identity_tree, select_identities  # noqa: E402
from src.data.landmarks import read_landmarks  # noqa: E402
from src.data.readers import format_line  # noqa: E402
from src.data.samples import write_class_names  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402

LOG = logging.getLogger("facerec.make_list")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="identity-folder tree: root/<identity>/<image>")
    parser.add_argument("--output", required=True, help="training list to write (must not exist)")
    parser.add_argument(
        "--format",
        choices=["plain", "arcface", "sphereface"],
        default=None,
        help="list format (default: sphereface with --landmarks, else plain)",
    )
    parser.add_argument("--landmarks", help="5-point landmark file 'relpath x1 y1 ... x5 y5' for the tree's images")
    parser.add_argument("--people", help="keep only these identities (LFW people file or one name per line)")
    parser.add_argument("--min_images", type=int, default=1, help="keep identities with at least this many images")
    parser.add_argument("--class_map", help="where to write 'label<TAB>identity' (default: <output>.classes.txt)")
    parser.add_argument("--absolute", action="store_true", help="write absolute image paths")
    args = parser.parse_args(argv)
    args.format = args.format or ("sphereface" if args.landmarks else "plain")
    if args.format == "sphereface" and not args.landmarks:
        parser.error("--format sphereface needs --landmarks")
    args.class_map = args.class_map or os.path.splitext(args.output)[0] + ".classes.txt"
    return args


def make_list(args):
    """Write the list and the class map; returns (number of images, number of classes, images left out)."""
    for path in (args.output, args.class_map):
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists; choose another --output / --class_map (nothing was written)")
    names = read_people(args.people) if args.people else None
    tree = scan_identity_tree(args.root, names)
    landmarks = read_landmarks(args.landmarks) if args.landmarks else None
    tree, dropped = select_identities(tree, args.min_images, landmarks.__contains__ if landmarks else None)
    if not tree:
        raise ValueError(
            f"no identity of {args.root} has {args.min_images} or more images"
            + (" with landmarks" if landmarks else "")
        )
    classes = sorted(tree)
    prefix = os.path.abspath(args.root) if args.absolute else ""
    lines = [
        format_line(
            args.format,
            os.path.join(prefix, relpath),
            label,
            landmarks[relpath] if landmarks and args.format == "sphereface" else None,
        )
        for label, identity in enumerate(classes)
        for relpath in tree[identity]
    ]
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "x", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    write_class_names(args.class_map, classes)
    return len(lines), len(classes), dropped


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    images, classes, dropped = make_list(args)
    if dropped:
        LOG.warning(
            "%d images have no landmarks in %s and were left out, e.g. %s", len(dropped), args.landmarks, dropped[0]
        )
    LOG.info(
        "wrote %d images of %d identities to %s (%s format) and the class map to %s",
        images,
        classes,
        args.output,
        args.format,
        args.class_map,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
