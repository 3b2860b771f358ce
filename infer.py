"""Face verification of two images, or embeddings of every image in a folder.

    python infer.py a.jpg b.jpg --config_path CONFIG --ckpt_file MODEL [--landmarks FILE] [--same_threshold T]
    python infer.py --folder DIR --out emb.npy --config_path CONFIG --ckpt_file MODEL [--landmarks FILE]

MODEL is a checkpoint or an exported MINDIR. Two images: prints their cosine similarity and, with
``--same_threshold`` (the ``thd=`` eval.py printed for the model), 'same' or 'different'. Folder: writes the
L2-normalised embeddings of every image under DIR (row i) to the .npy file and their paths relative to DIR to
a .txt file of the same name; unreadable images are skipped and logged.

``--landmarks`` is a 5-point landmark file (``relpath x1 y1 ... x5 y5``, the lfw_landmark.txt layout): faces are
aligned with it as in training; an image is looked up by its path relative to DIR (folder), else by the end of
its path (``../lfw/images_150/Ann/Ann_0001.jpg`` finds ``Ann/Ann_0001.jpg``). Without it, images are taken as
already aligned faces. Every config key works as ``--key=value``.
"""
import argparse
import logging
import os
import sys
import time

import numpy as np

from src.data.landmarks import LandmarkFormatError, read_landmarks
from src.data.preprocess import ImageDecodeError
from src.eval.predictor import Predictor
from src.model_utils.cli import run_main
from src.model_utils.config import load_config, load_schema
from src.model_utils.device import init_device
from src.model_utils.logger import setup_logging
from src.train.progress import format_duration

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sphereface_config.yaml")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CHUNK = 256
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Config keys: see `python eval.py --help`.", allow_abbrev=False)
    parser.add_argument("images", nargs="*", help="two face images to compare")
    parser.add_argument("--folder", help="embed every image under this folder instead")
    parser.add_argument("--out", default="emb.npy", help="folder mode: embeddings file (.npy)")
    parser.add_argument("--landmarks", help="5-point landmark file to align the images with")
    args = parser.parse_args(own)
    if bool(args.folder) == bool(args.images) or (args.images and len(args.images) != 2):
        parser.error("give two images, or --folder DIR")
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


def list_images(folder):
    """Every image file under ``folder``, sorted."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder not found: {folder}")
    found = [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
             if name.lower().endswith(IMAGE_EXTENSIONS)]
    if not found:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
    return sorted(found)


class ProgressBar:
    """A one-line progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, total, width=30):
        self.total, self.width, self.start = total, width, time.time()
        self.tty = sys.stderr.isatty()
        self.next_report = 0.1

    def update(self, done):
        fraction = done / max(self.total, 1)
        if not self.tty and fraction < self.next_report and done < self.total:
            return
        self.next_report = np.floor(fraction * 10 + 1) / 10
        elapsed = time.time() - self.start
        rate = done / max(elapsed, 1e-9)
        filled = int(self.width * fraction)
        eta = (self.total - done) / max(rate, 1e-9)
        bar = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {rate:.1f} img/s ETA " \
              f"{format_duration(eta)}"
        sys.stderr.write(("\r" + bar) if self.tty else bar + "\n")
        if self.tty and done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def compare(predictor, paths, table, source, threshold):
    landmarks = [find_landmarks(table, source, p) if table is not None else None for p in paths]
    cosine = predictor.similarity(paths[0], paths[1], landmarks[0], landmarks[1])
    if threshold is None:
        print(f"cosine={cosine:.4f} (no same_threshold set: pass --same_threshold=T, the thd= eval.py prints "
              f"for this model, to decide same/different)", flush=True)
    else:
        verdict = "same" if cosine > threshold else "different"
        print(f"cosine={cosine:.4f} {verdict} (threshold {threshold:.4f})", flush=True)
    return cosine


def embed_folder(predictor, folder, out, table, source):
    """Embed every readable image under ``folder``; writes ``out`` (.npy) and its .txt list of paths."""
    paths = list_images(folder)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)  # before the work, not after it
    bar = ProgressBar(len(paths))
    features, kept, skipped = [], [], []
    for start in range(0, len(paths), CHUNK):
        faces = []
        for path in paths[start:start + CHUNK]:
            try:
                landmarks = find_landmarks(table, source, path, folder) if table is not None else None
                faces.append(predictor.prepare(path, landmarks))
                kept.append(os.path.relpath(path, folder).replace(os.sep, "/"))
            except (ImageDecodeError, LandmarkFormatError) as err:
                LOG.warning("skipped %s", err)
                skipped.append(path)
        if faces:
            features.append(predictor.embed_prepared(np.stack(faces)))
        bar.update(min(start + CHUNK, len(paths)))
    if not features:
        raise RuntimeError(f"no image under {folder} could be embedded ({len(skipped)} skipped)")
    np.save(out, np.concatenate(features).astype(np.float32))
    names = os.path.splitext(out)[0] + ".txt"
    with open(names, "w", encoding="utf-8") as f:
        f.write("\n".join(kept) + "\n")
    print(f"{len(kept)} embeddings -> {out} (paths: {names}); {len(skipped)} images skipped", flush=True)
    return kept, skipped


def main(argv=None):
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = load_config(rest, description=__doc__, default_config=DEFAULT_CONFIG)
    init_device(cfg)
    setup_logging()
    table = read_landmarks(args.landmarks) if args.landmarks else None
    predictor = Predictor(cfg)
    if args.folder:
        return embed_folder(predictor, args.folder, args.out, table, args.landmarks)
    return compare(predictor, args.images, table, args.landmarks, cfg.same_threshold)


if __name__ == "__main__":
    sys.exit(run_main(main))
