"""The no-download demo data: scikit-learn's bundled handwritten digits (1,797 real 8x8 scans) as a verification
task written like LFW.

Two tasks (``TASKS``) split the scans into training images and held-out images:

- ``unseen_scans`` (the demo's): every digit is a training identity; the first two thirds of each digit's scans
  (in the data set's order) train, the last third is held out;
- ``unseen_digits`` (open set, as LFW is for faces): digits 0-6 train, digits 7-9 are held out whole.

The held-out images form 10 folds of same/different pairs written in LFW's ``pairs.txt`` format, so the demo
trains, evaluates and exports through exactly the code paths faces use: a ``relpath label`` training list and an
image folder + pairs file.
"""

import os

import cv2
import numpy as np
from sklearn.datasets import load_digits

TASKS = {
    "unseen_scans": "pairs of held-out scans (the last third of each digit's scans) of all ten digits, every digit "
    "trained on its first two thirds",
    "unseen_digits": "pairs of scans of the held-out digits 7-9, digits 0-6 trained on (open set)",
}
DEMO_TASK = "unseen_scans"
TRAIN_CLASSES = tuple(range(7))
HELDOUT_CLASSES = (7, 8, 9)
TRAIN_SHARE = 2 / 3


def digit_image(pixels, image_size):
    """8x8 values 0..16 -> image_size RGB uint8 (bicubic upsampling, grey replicated to three channels)."""
    grey = np.clip(pixels.reshape(8, 8) * (255.0 / 16.0), 0, 255).astype(np.uint8)
    height, width = image_size
    grey = cv2.resize(grey, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.repeat(grey[:, :, None], 3, axis=2)


def identity_name(digit):
    return f"digit{digit}"


def image_relpath(digit, number):
    name = identity_name(digit)
    return f"{name}/{name}_{number:04d}.png"


def heldout_classes(task):
    """The digits whose every scan is held out under ``task`` (drawn as such in feature plots)."""
    return HELDOUT_CLASSES if task == "unseen_digits" else ()


def split_scans(by_class, task):
    """{digit: scans} -> ({digit: training scans}, {digit: held-out scans}) under ``task`` (one of ``TASKS``)."""
    if task not in TASKS:
        raise ValueError(f"unknown digits task '{task}'; choose one of {sorted(TASKS)}")
    if task == "unseen_digits":
        return (
            {d: s for d, s in by_class.items() if d in TRAIN_CLASSES},
            {d: s for d, s in by_class.items() if d not in TRAIN_CLASSES},
        )
    cut = {d: round(len(s) * TRAIN_SHARE) for d, s in by_class.items()}
    return {d: s[: cut[d]] for d, s in by_class.items()}, {d: s[cut[d] :] for d, s in by_class.items()}


def draw_pairs(by_class, folds, pairs_per_fold, rng):
    """LFW layout: per fold ``pairs_per_fold`` same-identity lines, then as many different-identity lines."""
    lines = []
    classes = sorted(by_class)
    for _ in range(folds):
        for _ in range(pairs_per_fold):
            digit = classes[rng.integers(len(classes))]
            first, second = rng.choice(len(by_class[digit]), 2, replace=False) + 1
            lines.append(f"{identity_name(digit)}\t{first}\t{second}")
        for _ in range(pairs_per_fold):
            a, b = rng.choice(classes, 2, replace=False)
            lines.append(
                f"{identity_name(a)}\t{rng.integers(len(by_class[a])) + 1}\t"
                f"{identity_name(b)}\t{rng.integers(len(by_class[b])) + 1}"
            )
    return lines


def write_images(by_class, root, image_size):
    """Write each digit's scans as ``root/digitD/digitD_NNNN.png`` (numbered from 1); returns the
    ``relpath label`` lines."""
    lines = []
    for digit, scans in sorted(by_class.items()):
        os.makedirs(os.path.join(root, identity_name(digit)), exist_ok=True)
        for number, pixels in enumerate(scans, 1):
            relpath = image_relpath(digit, number)
            image = digit_image(pixels, image_size)
            cv2.imwrite(os.path.join(root, relpath), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            lines.append(f"{relpath} {digit}")
    return lines


def prepare_digits(out_dir, image_size=(32, 32), folds=10, pairs_per_fold=30, seed=0, task="unseen_digits"):
    """Write ``train/`` + ``train_list.txt`` (the training scans) and ``heldout/`` + ``pairs.txt`` (the held-out
    scans) of ``task`` (one of ``TASKS``).

    Returns the paths {'train_root', 'train_list', 'eval_root', 'eval_pairs', 'heldout_list'} (the last lists the
    held-out images as ``relpath label`` under ``eval_root``, for feature plots).
    """
    digits = load_digits()
    by_class = {}
    for pixels, digit in zip(digits.data, digits.target):
        by_class.setdefault(int(digit), []).append(pixels)
    train, heldout = split_scans(by_class, task)
    paths = {
        "train_root": os.path.join(out_dir, "train"),
        "train_list": os.path.join(out_dir, "train_list.txt"),
        "eval_root": os.path.join(out_dir, "heldout"),
        "eval_pairs": os.path.join(out_dir, "pairs.txt"),
        "heldout_list": os.path.join(out_dir, "heldout_list.txt"),
    }
    for key, root, scans in (("train_list", paths["train_root"], train), ("heldout_list", paths["eval_root"], heldout)):
        lines = write_images(scans, root, image_size)
        with open(paths[key], "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    pairs = draw_pairs(heldout, folds, pairs_per_fold, np.random.default_rng(seed))
    with open(paths["eval_pairs"], "w", encoding="utf-8") as f:
        f.write(f"{folds}\t{pairs_per_fold}\n" + "\n".join(pairs) + "\n")
    return paths
