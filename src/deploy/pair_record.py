"""``pairs.json``: the pair list preprocess.py writes beside the harness inputs and postprocess.py scores."""

import json
import os

import numpy as np

from src.eval.pairs import PairSet

PAIRS_FILE = "pairs.json"


def write_pair_record(folder, record):
    with open(os.path.join(folder, PAIRS_FILE), "w", encoding="utf-8") as f:
        json.dump(record, f)


def read_pair_record(folder):
    """The record preprocess.py wrote into ``folder``, and its pairs as a ``PairSet``."""
    path = os.path.join(folder, PAIRS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: run preprocess.py with --infer_input_dir {folder} first")
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    missing = [key for key in ("images", "orig", "flip", "first", "second", "issame", "folds") if key not in record]
    if missing:
        raise ValueError(f"{path}: no '{missing[0]}' entry (not written by preprocess.py?)")
    pair_set = PairSet(
        source=record.get("pairs_file", path),
        root=record["image_root"],
        relpaths=record["images"],
        where=[path] * len(record["images"]),
        first=np.asarray(record["first"], np.int64),
        second=np.asarray(record["second"], np.int64),
        issame=np.asarray(record["issame"], bool),
        folds=np.asarray(record["folds"], np.int64),
    )
    return record, pair_set
