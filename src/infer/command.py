"""Face verification of two photos, 1:N search of photos in a gallery of people, or embeddings of a folder.

    python infer.py a.jpg b.jpg --ckpt_file MODEL.mindir [--all_faces] [--same_threshold T]
    python infer.py a.jpg b.jpg --config_path CONFIG --ckpt_file MODEL [--all_faces] [--same_threshold T]
    python infer.py --gallery DIR --query IMG [IMG ...] --config_path CONFIG --ckpt_file MODEL [--top_k K]
        [--eval_json EVAL_JSON] [--min_face 32] [--min_score 0.9]
    python infer.py --folder DIR --out emb.npy --config_path CONFIG --ckpt_file MODEL

MODEL is a checkpoint or an exported MINDIR. A MINDIR needs no config: its sidecar ``MODEL.mindir.json`` (export.py)
gives the input size, embedding size, fusion and threshold, the device is the CPU unless ``--device_target`` says
otherwise, and two photos run in PYNATIVE mode unless ``--mode`` is given (src/infer/run.py). Faces are found
in ordinary photos by the MTCNN detector (src/detect) and aligned from its 5 landmarks as in training. Where a photo
holds several faces, all are listed, most central first (box centre nearest the image centre; ties: the larger box),
and the most central one is the photo's face; ``--all_faces`` compares every face of the first photo with every face
of the second. A photo with no face stops with a message naming it (exit status 1). ``--aligned``: the images are
already aligned faces (no detection); ``--landmarks FILE``: a 5-point landmark file (``relpath x1 y1 ... x5 y5``,
the lfw_landmark.txt layout) gives each image's points instead of the detector; an image is looked up by its path
relative to DIR (folder, gallery), else by the end of its path (``../lfw/images_150/Ann/Ann_0001.jpg`` finds
``Ann/Ann_0001.jpg``). With ``--same_threshold`` (the ``thd=`` eval.py printed for the model) each cosine is called
'same' or 'different'; without it, the threshold stored in an exported model's sidecar (``export.py
--threshold_from``), if any, saying which.

Two photos: prints ``cosine=X same|different (threshold T)``, T from ``--same_threshold`` (the ``thd=`` eval.py
printed for the model). Gallery: DIR holds one folder per person (``DIR/<name>/<photo>``, any number of photos,
the most central face of each); each person is the L2-normalised mean of their embeddings. The enrolment is cached
in ``DIR.gallery.npz`` beside DIR (``--cache FILE`` elsewhere, e.g. for a read-only gallery) with a fingerprint of
the model file, the settings that change embeddings and the gallery's files (names, sizes, times), so a changed
model or gallery is enrolled again. Each face of each query prints ``IMG -> NAME cosine=X``, or
``IMG -> unknown (best NAME cosine=X)`` when X is not above the threshold, then ``(detection score S)`` for a
detected face, and with ``--top_k K`` its K best matches. Detected faces smaller than ``--min_face`` px (the box's
shorter side, default 32) or scoring below ``--min_score`` (default 0.9) are listed as not searched: MTCNN's
false detections. The 1:N threshold is the open-set one: the strictest FAR-based threshold (FAR 1e-3 or
stricter) of eval.py's JSON of the model (``--eval_json``, else ``eval_result.json`` beside the model) or of its
sidecar, saying which; without one, the verification threshold with a warning (``--same_threshold`` overrides
both). Photos that give no face are skipped and counted (gallery, folder) or reported (query, exit status 1);
photos with several faces are counted in both (their most central face is used).
Folder: writes the L2-normalised embeddings of every image under DIR (row i) to the .npy file and their paths
relative to DIR to a .txt file of the same name. Every config key works as ``--key=value``.
"""

import argparse
import functools
import sys

from src.infer.identify import SEARCH_MIN_FACE, SEARCH_MIN_SCORE
from src.infer.run import run_infer
from src.model_utils.cli import run_main
from src.model_utils.config import load_schema


def split_config_args(argv):
    """(infer.py's own arguments, the config arguments: ``--config_path`` and schema keys, as ``--key=value`` or
    ``--key value``). Split by name because argparse takes a value with a space ('[112, 96]') for a positional."""
    names = {"--config_path"} | {f"--{key}" for key in load_schema()}
    own, config = [], []
    tokens = iter(argv)
    for token in tokens:
        name = token.split("=", 1)[0]
        if name not in names:
            own.append(token)
            continue
        config.append(token)
        if "=" not in token:
            config.append(next(tokens, ""))
    return own, config


def parse_args(argv):
    """(infer.py's own arguments, the config arguments)."""
    own, config = split_config_args(argv)
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Config keys: see `python eval.py --help`.",
        allow_abbrev=False,
    )
    parser.add_argument("images", nargs="*", help="two photos to compare")
    parser.add_argument(
        "--all_faces",
        action="store_true",
        help="two photos: compare every face of the first with every face of the second",
    )
    parser.add_argument("--gallery", help="1:N search: folder with one sub-folder of photos per person")
    parser.add_argument("--query", nargs="+", help="1:N search: the photos to identify")
    parser.add_argument("--top_k", type=int, default=1, help="1:N search: list the K best identities of each face")
    parser.add_argument("--cache", help="1:N search: the gallery's cache file (default: DIR.gallery.npz beside DIR)")
    parser.add_argument(
        "--eval_json", help="1:N search: eval.py's JSON of the model, for the open-set threshold (default: beside it)"
    )
    parser.add_argument(
        "--min_face", type=float, default=SEARCH_MIN_FACE, help="1:N search: smallest detected face searched, px"
    )
    parser.add_argument(
        "--min_score", type=float, default=SEARCH_MIN_SCORE, help="1:N search: lowest detection score searched"
    )
    parser.add_argument("--folder", help="embed every image under this folder instead")
    parser.add_argument("--out", default="emb.npy", help="folder mode: embeddings file (.npy)")
    faces = parser.add_mutually_exclusive_group()
    faces.add_argument("--landmarks", help="5-point landmark file to align the images with (no detection)")
    faces.add_argument("--aligned", action="store_true", help="the images are aligned faces (no detection)")
    args = parser.parse_args(own)
    modes = [bool(args.images), bool(args.folder), bool(args.gallery or args.query)]
    if sum(modes) != 1 or (args.images and len(args.images) != 2):
        parser.error("give two images, or --folder DIR, or --gallery DIR --query IMG [IMG ...]")
    if bool(args.gallery) != bool(args.query):
        parser.error("1:N search needs both --gallery DIR and --query IMG [IMG ...]")
    if args.top_k < 1:
        parser.error("--top_k must be at least 1")
    if args.all_faces and (args.aligned or args.landmarks or not args.images):
        parser.error("--all_faces compares the detected faces of two photos (not with --aligned or --landmarks)")
    return args, config


def main(argv=None):
    """Run infer.py; returns the exit status (1 when a query gave no face). Bad input raises (``cli`` prints it)."""
    return run_infer(*parse_args(sys.argv[1:] if argv is None else argv))


def cli(argv=None):
    """``main`` with user errors (a missing file, no face, a bad config key or landmark file, an empty gallery,
    MTCNN weights that cannot be fetched) reported as one ``error:`` line, no traceback (src/model_utils/cli.py)."""
    return run_main(functools.partial(main, argv))
