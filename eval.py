"""Pair verification of a checkpoint, every checkpoint in a folder, or an exported MINDIR.

    python eval.py --config_path CONFIG --ckpt_file CKPT_FILE_OR_DIR_OR_MINDIR \
        --eval_pairs PAIRS [--eval_root IMAGES] [--eval_landmarks LANDMARKS] [--fusion concat]

PAIRS is an LFW pairs file (``pairs.txt``, View 1 ``pairsDevTest.txt``), a ``label path1 path2`` list, or an
insightface ``.bin`` set (``eval_pairs_format`` detects which). Prints ``LFWACC=... std=... thd=...`` (10-fold
protocol, fusion ``fusion``) per model, a line per fusion mode, a table with the best marked for a folder; writes
every metric, labelled with its protocol, as JSON, and beside it a per-pair score CSV, a ROC PNG (log FAR axis)
and a same/different score histogram PNG per model.
"""
import json
import logging
import os
import sys
import time

from src.eval.embed import FUSION_DESCRIPTIONS, FUSIONS, embed_images
from src.eval.images import load_pair_images
from src.eval.models import load_network, model_files
from src.eval.pairs import drop_missing_images
from src.eval.report import (accuracy_line, plot_histogram, plot_roc, results_table, summary_line,
                             write_scores_csv)
from src.eval.sources import read_pair_set
from src.eval.verify import evaluate_embeddings
from src.model_utils.cli import run_main
from src.model_utils.config import load_config
from src.model_utils.device import describe_device, init_device
from src.model_utils.logger import setup_logging

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sphereface_config.yaml")
LOG = logging.getLogger("facerec.eval")


def output_path(cfg):
    """The JSON file: ``eval_output``, else ``eval_result.json`` next to the checkpoint (in the folder)."""
    if cfg.eval_output:
        return cfg.eval_output
    folder = cfg.ckpt_file if os.path.isdir(cfg.ckpt_file) else os.path.dirname(os.path.abspath(cfg.ckpt_file))
    return os.path.join(folder, "eval_result.json")


def write_model_files(json_path, model_path, pair_set, scores, metrics, fusion):
    """The per-pair CSV, ROC and histogram of one model next to the JSON; returns their paths."""
    stem = os.path.splitext(json_path)[0] + "_" + os.path.splitext(os.path.basename(model_path))[0]
    files = {"scores_csv": stem + "_scores.csv", "roc_png": stem + "_roc.png", "histogram_png": stem + "_hist.png"}
    title = f"{os.path.basename(model_path)} on {os.path.basename(pair_set.source)}"
    write_scores_csv(files["scores_csv"], pair_set, scores)
    plot_roc(files["roc_png"], scores, pair_set.issame, title)
    plot_histogram(files["histogram_png"], scores[fusion], pair_set.issame,
                   metrics[fusion]["kfold"]["threshold"], f"{title} ({fusion})")
    return files


def write_json(record, path):
    """Write ``record`` atomically (a temporary file renamed over ``path``)."""
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
    os.replace(partial, path)


def evaluate(cfg):
    """Evaluate every model ``cfg.ckpt_file`` names on ``cfg.eval_pairs``; returns the JSON record."""
    init_device(cfg)
    setup_logging()
    LOG.info(describe_device(cfg))
    for key in ("ckpt_file", "eval_pairs"):
        if getattr(cfg, key) is None:
            raise ValueError(f"config key '{key}' is not set")
    started = time.time()
    models = model_files(cfg.ckpt_file)
    json_path = output_path(cfg)
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)  # before the work, not after it
    pair_set, missing = drop_missing_images(read_pair_set(cfg.eval_pairs, cfg.eval_pairs_format, cfg.eval_root,
                                                          cfg.eval_image_ext))
    for relpath in missing:
        LOG.warning("image not found, its pairs are skipped: %s", os.path.join(cfg.eval_root, relpath))
    LOG.info("%d pairs (%d same), %d images, %d folds from %s", len(pair_set), pair_set.issame.sum(),
             len(pair_set.relpaths), len(set(pair_set.folds.tolist())), cfg.eval_pairs)
    images = load_pair_images(pair_set, cfg.image_size, cfg.eval_landmarks, cfg.eval_fit)
    record = {"pair_set": {"source": cfg.eval_pairs, "pairs": len(pair_set), "same": int(pair_set.issame.sum()),
                           "images": len(pair_set.relpaths), "missing_images": missing, "landmarks": cfg.eval_landmarks,
                           "image_size": list(cfg.image_size), "fit": None if cfg.eval_landmarks else cfg.eval_fit,
                           "subtract_mean": cfg.eval_subtract_mean},
              "fusion": cfg.fusion, "fusion_modes": FUSION_DESCRIPTIONS, "models": {}}
    for path in models:
        model_start = time.time()
        network, batch_size = load_network(cfg, path)
        orig, flip = embed_images(network, images, batch_size)
        metrics, scores = evaluate_embeddings(orig, flip, pair_set, cfg.eval_subtract_mean)
        entry = {"metrics": metrics, "seconds": round(time.time() - model_start, 1)}
        if cfg.eval_plots:
            entry["files"] = write_model_files(json_path, path, pair_set, scores, metrics, cfg.fusion)
        record["models"][path] = entry
        write_json(record, json_path)                  # kept if a later model of the folder fails
        print(f"{accuracy_line(metrics[cfg.fusion])} model={os.path.basename(path)} fusion={cfg.fusion}",
              flush=True)
        for mode in FUSIONS:
            print(f"  {mode:<6} {summary_line(metrics[mode])}", flush=True)
    best = max(models, key=lambda p: record["models"][p]["metrics"][cfg.fusion]["kfold"]["accuracy"])
    record["best"] = best
    if len(models) > 1:
        rows = [(os.path.basename(p), record["models"][p]["metrics"][cfg.fusion]) for p in models]
        print(results_table(rows, os.path.basename(best)), flush=True)
    record["seconds"] = round(time.time() - started, 1)
    write_json(record, json_path)
    LOG.info("metrics written to %s (%.1f s)", json_path, record["seconds"])
    return record


def main(argv=None):
    evaluate(load_config(argv, description=__doc__, default_config=DEFAULT_CONFIG))


if __name__ == "__main__":
    sys.exit(run_main(main))
