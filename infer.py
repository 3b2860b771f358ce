"""Face verification of two photos, 1:N search of photos in a gallery of people, or embeddings of a folder.

    python infer.py a.jpg b.jpg --config_path CONFIG --ckpt_file MODEL [--all_faces] [--same_threshold T]
    python infer.py --gallery DIR --query IMG [IMG ...] --config_path CONFIG --ckpt_file MODEL [--top_k K]
        [--eval_json EVAL_JSON] [--min_face 32] [--min_score 0.9]
    python infer.py --folder DIR --out emb.npy --config_path CONFIG --ckpt_file MODEL

MODEL is a checkpoint or an exported MINDIR. Faces are found in ordinary photos by the MTCNN detector
(src/detect) and aligned from its 5 landmarks as in training. Where a photo holds several faces, all are listed,
most central first (box centre nearest the image centre; ties: the larger box), and the most central one is the
photo's face; ``--all_faces`` compares every face of the first photo with every face of the second. A photo
with no face stops with a message naming it (exit status 1). ``--aligned``: the images are already aligned
faces (no detection); ``--landmarks FILE``: a 5-point landmark file (``relpath x1 y1 ... x5 y5``, the
lfw_landmark.txt layout) gives each image's points instead of the detector; an image is looked up by its path
relative to DIR (folder, gallery), else by the end of its path (``../lfw/images_150/Ann/Ann_0001.jpg`` finds
``Ann/Ann_0001.jpg``). With ``--same_threshold`` (the ``thd=`` eval.py printed for the model) each cosine is
called 'same' or 'different'; without it, the threshold stored in an exported model's sidecar (``export.py
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
import logging
import os
import sys

import numpy as np

from src.data.landmarks import LandmarkFormatError, read_landmarks
from src.deploy.sidecar_threshold import open_set_threshold
from src.infer.identify import FACE_ERRORS, SEARCH_MIN_FACE, SEARCH_MIN_SCORE, face_crops, several_faces_note
from src.infer.predictor import Predictor
from src.infer.progress_bar import ProgressBar
from src.model_utils.cli import run_main
from src.model_utils.config import DEFAULT_CONFIG, load_config, load_schema
from src.model_utils.device import describe_device, init_device
from src.model_utils.logger import setup_logging

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CHUNK = 256
NO_THRESHOLD = (
    "no same_threshold set: pass --same_threshold=T, the thd= eval.py prints for this model, to decide same/different"
)
LOG = logging.getLogger("facerec.infer")


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


def find_landmarks(table, source, path, folder=None):
    """The landmarks of ``path``: by its path relative to ``folder``, else by its trailing path components, longest
    first (``../lfw/images/Ann/Ann_0001.jpg`` finds ``Ann/Ann_0001.jpg``), down to its file name."""
    parts = os.path.normpath(path).split(os.sep)
    keys = [os.path.relpath(path, folder).replace(os.sep, "/")] if folder else []
    keys += ["/".join(parts[k:]) for k in range(len(parts))]
    for key in keys:
        if key in table:
            return table[key]
    raise LandmarkFormatError(f"{source}: no landmarks for image {path}")


def landmark_lookup(args, folder=None):
    """A function path -> 5x2 landmarks from ``--landmarks`` (None without it)."""
    if not args.landmarks:
        return None
    table = read_landmarks(args.landmarks)
    return lambda path: find_landmarks(table, args.landmarks, path, folder)


def list_images(folder):
    """Every image file under ``folder``, sorted."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder not found: {folder}")
    found = [
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    if not found:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
    return sorted(found)


def verdict(cosine, threshold):
    """``cosine=X same|different (threshold T)``, or ``cosine=X`` without a threshold."""
    if threshold is None:
        return f"cosine={cosine:.4f}"
    return f"cosine={cosine:.4f} {'same' if cosine > threshold else 'different'} (threshold {threshold:.4f})"


def describe_faces(path, faces):
    """``path: N faces, most central first: #1 box (x1, y1, x2, y2) score S, ...``"""
    listed = ", ".join(
        f"#{k} box ({', '.join(f'{v:.0f}' for v in face.box)}) score {face.score:.3f}"
        for k, face in enumerate(faces, 1)
    )
    return f"{path}: {len(faces)} faces, most central first: {listed}"


def compare(predictor, paths, lookup, threshold, all_faces):
    """Print the cosine of the two photos' faces (every pair with ``all_faces``); returns the first cosine."""
    if not predictor.detect:
        landmarks = [lookup(p) for p in paths] if lookup is not None else [None, None]
        cosine = predictor.similarity(paths[0], paths[1], landmarks[0], landmarks[1])
        print(verdict(cosine, threshold) + ("" if threshold is not None else f" ({NO_THRESHOLD})"), flush=True)
        return cosine
    (faces_a, aligned_a), (faces_b, aligned_b) = (predictor.faces(p) for p in paths)
    for path, faces in zip(paths, (faces_a, faces_b)):
        if len(faces) > 1:
            print(describe_faces(path, faces), flush=True)
    features = predictor.embed_prepared(np.concatenate([aligned_a, aligned_b]))  # one batch for both photos
    cosines = features[: len(faces_a)] @ features[len(faces_a) :].T
    if all_faces:
        for i, j in np.ndindex(cosines.shape):
            print(f"{paths[0]} #{i + 1} - {paths[1]} #{j + 1}: {verdict(float(cosines[i, j]), threshold)}", flush=True)
    else:
        crowded = len(faces_a) > 1 or len(faces_b) > 1
        print(
            verdict(float(cosines[0, 0]), threshold)
            + (" (the most central faces, #1; --all_faces compares every face)" if crowded else ""),
            flush=True,
        )
    if threshold is None:
        print(f"({NO_THRESHOLD})", flush=True)
    return float(cosines[0, 0])


def embed_folder(predictor, folder, out, lookup):
    """Embed every readable image under ``folder`` (its most central face when detecting); writes ``out`` (.npy)
    and its .txt list of paths."""
    paths = list_images(folder)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)  # before the work, not after it
    bar = ProgressBar(len(paths))
    features, kept, skipped, crowded = [], [], [], 0
    for start in range(0, len(paths), CHUNK):
        faces = []
        for path in paths[start : start + CHUNK]:
            try:
                aligned, found = face_crops(predictor, path, lookup)
            except FACE_ERRORS as err:
                LOG.warning("skipped %s", err)
                skipped.append(path)
                continue
            faces.append(aligned[0])
            kept.append(os.path.relpath(path, folder).replace(os.sep, "/"))
            crowded += len(found) > 1
        if faces:
            features.append(predictor.embed_prepared(np.stack(faces)))
        bar.update(min(start + CHUNK, len(paths)))
    if not features:
        raise FileNotFoundError(f"no image under {folder} could be embedded ({len(skipped)} skipped)")
    np.save(out, np.concatenate(features).astype(np.float32))
    names = os.path.splitext(out)[0] + ".txt"
    with open(names, "w", encoding="utf-8") as f:
        f.write("\n".join(kept) + "\n")
    several = f"; {several_faces_note(crowded, 'embedded')}" if crowded else ""
    print(f"{len(kept)} embeddings -> {out} (paths: {names}); {len(skipped)} images skipped{several}", flush=True)
    return kept, skipped


def search_threshold(predictor, args):
    """The 1:N threshold without --same_threshold: the open-set one (see the docstring), else the verification
    one with a warning, else None; printed with where it comes from."""
    threshold, source = open_set_threshold(predictor.model_path, predictor.cfg.fusion, args.eval_json)
    if threshold is not None:
        print(f"open-set threshold {threshold:.4f}: {source} (--same_threshold overrides)", flush=True)
        return threshold
    if predictor.threshold is not None:
        LOG.warning(
            "open-set search has no calibrated threshold (%s): using the verification threshold %.4f (%s), which "
            "accepts people who are not in the gallery more often; evaluate the model on a set with at least "
            "1,000 different pairs (FAR 1e-3)",
            source,
            predictor.threshold,
            predictor.threshold_source,
        )
    return predictor.threshold


def search_gallery(predictor, args, threshold):
    """Enrol ``args.gallery`` (or read its cache), print the matches of every query face; returns the number of
    queries that gave no face."""
    gallery = predictor.enroll(args.gallery, cache=args.cache or True, landmarks=landmark_lookup(args, args.gallery))
    how = "read from its cache" if gallery.cached else "enrolled"
    print(
        f"gallery {args.gallery}: {len(gallery)} identities from {int(gallery.photos.sum())} photos {how}; "
        f"{len(gallery.skipped)} photos or folders skipped",
        flush=True,
    )
    if threshold is None:
        print(f"({NO_THRESHOLD}; every face gets its best match)", flush=True)
    failed = 0
    for result in predictor.search(
        args.query, gallery, args.top_k, landmark_lookup(args), args.min_face, args.min_score
    ):
        if result.error:
            print(f"{result.image} -> not searched: {result.error}", flush=True)
            failed += 1
            continue
        name = (
            result.image
            if result.faces == 1
            else f"{result.image} #{result.face + 1}/{result.faces} (box {', '.join(f'{v:.0f}' for v in result.box)})"
        )
        if result.skipped:
            print(f"{name} -> not searched: {result.skipped}", flush=True)
            continue
        best = result.matches[0]
        identity = result.identity(threshold)
        answer = (
            f"{identity} cosine={best.cosine:.4f}"
            if identity is not None
            else f"unknown (best {best.identity} cosine={best.cosine:.4f})"
        )
        score = "" if result.score is None else f" (detection score {result.score:.3f})"
        print(f"{name} -> {answer}{score}", flush=True)
        if args.top_k > 1:
            for rank, match in enumerate(result.matches, 1):
                print(f"    {rank}. {match.identity} cosine={match.cosine:.4f}", flush=True)
    return failed


def main(argv=None):
    """Run infer.py; returns the exit status (1 when a query gave no face). Bad input raises (``cli`` prints it)."""
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = load_config(rest, description=__doc__, default_config=DEFAULT_CONFIG)
    init_device(cfg)
    setup_logging()
    LOG.info(describe_device(cfg))
    predictor = Predictor(cfg, detect=not (args.aligned or args.landmarks))
    if args.folder:
        embed_folder(predictor, args.folder, args.out, landmark_lookup(args, args.folder))
        return 0
    threshold = cfg.same_threshold
    if args.gallery:
        threshold = search_threshold(predictor, args) if threshold is None else threshold
        return 1 if search_gallery(predictor, args, threshold) else 0
    if threshold is None and predictor.threshold is not None:
        threshold = predictor.threshold
        print(f"threshold {threshold:.4f}: {predictor.threshold_source} (--same_threshold overrides)", flush=True)
    compare(predictor, args.images, landmark_lookup(args), threshold, args.all_faces)
    return 0


def cli(argv=None):
    """``main`` with user errors (a missing file, no face, a bad config key or landmark file, an empty gallery,
    MTCNN weights that cannot be fetched) reported as one ``error:`` line, no traceback (src/model_utils/cli.py)."""
    return run_main(functools.partial(main, argv))


if __name__ == "__main__":
    sys.exit(cli())
