"""The evaluation behind eval.py (whose docstring gives the usage): every model ``ckpt_file`` names (a checkpoint,
every checkpoint of a folder, an exported MINDIR) on one pair set (``eval_pairs``: LFWACC lines), on several
(``val_targets``: a table per model, the best by ``val_select``) or on IJB-B / IJB-C (``ijb``). The JSON record
holds every metric and the thresholds a deployment can use; beside it go the per-pair CSV, ROC and histogram.
"""

import json
import logging
import os
import time

from src.eval.embed import FUSION_DESCRIPTIONS, FUSIONS, embed_images
from src.eval.ijb import embed_meta, evaluate_features, ijb_table, load_features, save_features
from src.eval.ijb_meta import read_meta
from src.eval.mindir_info import is_mindir
from src.eval.models import load_network, model_files
from src.eval.report import (
    accuracy_line,
    plot_histogram,
    plot_roc,
    results_table,
    summary_line,
    targets_table,
    write_scores_csv,
)
from src.eval.targets import check_select, load_target, selection_score, targets_from_config
from src.eval.thresholds import deployable_thresholds
from src.eval.verify import evaluate_embeddings
from src.kernels.accelerate import kernels_enabled
from src.model_utils.config import ConfigError
from src.model_utils.device import describe_device, init_device
from src.model_utils.logger import setup_logging
from src.network.weights import DamagedFileError

LOG = logging.getLogger("facerec.eval")


def output_path(cfg):
    """The JSON file: ``eval_output``, else ``eval_result.json`` next to the checkpoint (in the folder)."""
    if cfg.eval_output:
        return cfg.eval_output
    folder = cfg.ckpt_file if os.path.isdir(cfg.ckpt_file) else os.path.dirname(os.path.abspath(cfg.ckpt_file))
    return os.path.join(folder, "eval_result.json")


def model_stem(json_path, model_path):
    """``<json without .json>_<model file name without extension>``: the prefix of a model's output files."""
    return os.path.splitext(json_path)[0] + "_" + os.path.splitext(os.path.basename(model_path))[0]


def write_model_files(json_path, model_path, loaded, scores, metrics, fusion):
    """The per-pair CSV, ROC and histogram of one model on one target next to the JSON; returns their paths."""
    stem = model_stem(json_path, model_path)
    if loaded.target.name:
        stem += "_" + loaded.target.name
    pair_set = loaded.pair_set
    files = {"scores_csv": stem + "_scores.csv", "roc_png": stem + "_roc.png", "histogram_png": stem + "_hist.png"}
    title = f"{os.path.basename(model_path)} on {os.path.basename(pair_set.source)}"
    write_scores_csv(files["scores_csv"], pair_set, scores)
    plot_roc(files["roc_png"], scores, pair_set.issame, title)
    plot_histogram(
        files["histogram_png"],
        scores[fusion],
        pair_set.issame,
        metrics[fusion]["kfold"]["threshold"],
        f"{title} ({fusion})",
    )
    return files


def write_json(record, path):
    """Write ``record`` atomically (a temporary file renamed over ``path``)."""
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
    os.replace(partial, path)


def pair_set_record(loaded, cfg):
    pair_set, target = loaded.pair_set, loaded.target
    return {
        "source": target.pairs,
        "pairs": len(pair_set),
        "same": int(pair_set.issame.sum()),
        "images": len(pair_set.relpaths),
        "missing_images": loaded.missing,
        "images_without_landmarks": pair_set.without_landmarks or [],
        "landmarks": target.landmarks,
        "image_size": list(cfg.image_size),
        "fit": None if target.landmarks else target.fit,
        "subtract_mean": cfg.eval_subtract_mean,
    }


def evaluate_on(network, batch_size, loaded, cfg, json_path, model_path):
    """Metrics of every fusion on one loaded target, the deployable thresholds of ``cfg.fusion``, and (with
    ``eval_plots``) the per-pair CSV and plots: the model's JSON entry for that target."""
    orig, flip = embed_images(network, loaded.images, batch_size)
    metrics, scores = evaluate_embeddings(orig, flip, loaded.pair_set, cfg.eval_subtract_mean)
    entry = {
        "metrics": metrics,
        "thresholds": deployable_thresholds(
            scores[cfg.fusion],
            loaded.pair_set.issame,
            metrics[cfg.fusion]["best_threshold_all_pairs"]["threshold"],
            cfg.fusion,
        ),
    }
    if cfg.eval_plots:
        entry["files"] = write_model_files(json_path, model_path, loaded, scores, metrics, cfg.fusion)
    return entry


def print_single(entry, path, fusion):
    metrics = entry["metrics"]
    print(f"{accuracy_line(metrics[fusion])} model={os.path.basename(path)} fusion={fusion}", flush=True)
    for mode in FUSIONS:
        print(f"  {mode:<6} {summary_line(metrics[mode])}", flush=True)


def ijb_sources(cfg, meta, json_path):
    """[(model or features file, (orig, flip) image embeddings)]: the saved ``ijb_features``, else every model's
    (saved beside the JSON as ``<json>_<model>_features.npz``)."""
    if cfg.ijb_features:
        return [(cfg.ijb_features, load_features(cfg.ijb_features, meta))]
    sources = []
    for path in model_files(cfg.ckpt_file):
        network, batch_size = load_network(cfg, path)
        embeddings = embed_meta(network, batch_size, meta, cfg.image_size)
        features = model_stem(json_path, path) + "_features.npz"
        save_features(features, meta, *embeddings)
        LOG.info("image embeddings saved to %s (reuse with --ijb_features)", features)
        sources.append((path, embeddings))
    return sources


def evaluate_ijb(cfg):
    """IJB-B / IJB-C 1:1 and 1:N of every model ``cfg.ckpt_file`` names (or of saved embeddings); prints a
    table per model and returns the JSON record."""
    started = time.time()
    meta = read_meta(cfg.ijb, cfg.ijb_set)
    json_path = cfg.eval_output or os.path.join(
        os.path.dirname(os.path.abspath(cfg.ijb_features or cfg.ckpt_file)), f"{cfg.ijb_set.lower()}_result.json"
    )
    record = {"ijb": cfg.ijb, "set": cfg.ijb_set, "image_size": list(cfg.image_size), "models": {}}
    for path, (orig, flip) in ijb_sources(cfg, meta, json_path):
        result, scores = evaluate_features(meta, orig, flip, cfg.ijb_flip, cfg.ijb_detector_score)
        if cfg.eval_plots and scores is not None:
            result["roc_png"] = model_stem(json_path, path) + "_roc.png"
            plot_roc(
                result["roc_png"],
                {"1:1": scores},
                meta.pairs[:, 2].astype(bool),
                f"{os.path.basename(path)} on {cfg.ijb_set} 1:1",
            )
        record["models"][path] = result
        write_json(record, json_path)
        print(f"model={os.path.basename(path)}\n{ijb_table(result)}", flush=True)
    record["seconds"] = round(time.time() - started, 1)
    write_json(record, json_path)
    LOG.info("IJB metrics written to %s (%.1f s)", json_path, record["seconds"])
    return record


def checkpoints_through_kernels(cfg):
    """Whether every model this evaluation runs is a checkpoint of the configured backbone whose convolutions all
    go through the project's CPU kernels (``cpu_kernels``); a MINDIR holds MindSpore's own convolutions."""
    try:
        checkpoints = cfg.ckpt_file is not None and not any(is_mindir(p) for p in model_files(cfg.ckpt_file))
    except FileNotFoundError:  # reported where the models are loaded
        return False
    return checkpoints and kernels_enabled(cfg.cpu_kernels, cfg.device_target)


def evaluate(cfg):
    """Evaluate every model ``cfg.ckpt_file`` names on the ``cfg.val_targets`` sets (one unnamed set: LFWACC lines,
    else a table per model), or on the IJB set ``cfg.ijb``; returns the JSON record."""
    init_device(cfg, checkpoints_through_kernels(cfg))
    setup_logging()
    LOG.info(describe_device(cfg))
    if cfg.ijb:
        if cfg.ckpt_file is None and cfg.ijb_features is None:
            raise ConfigError("config key 'ckpt_file' is not set (nor 'ijb_features')")
        return evaluate_ijb(cfg)
    if cfg.ckpt_file is None:
        raise ConfigError("config key 'ckpt_file' is not set")
    targets = targets_from_config(cfg)
    if not targets:
        raise ConfigError("config key 'val_targets' is empty: give the pair set(s), e.g. --val_targets='[{pairs: P}]'")
    multi = targets[0].name is not None  # one unnamed pair set: LFWACC lines, as the single-set keys gave
    if multi:
        check_select(cfg.val_select, targets)
    started = time.time()
    models = model_files(cfg.ckpt_file)
    json_path = output_path(cfg)
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)  # before the work, not after it
    loaded = [load_target(target, cfg.image_size) for target in targets]
    record = {"fusion": cfg.fusion, "fusion_modes": FUSION_DESCRIPTIONS, "models": {}}
    if multi:
        record.update(targets={t.target.label: pair_set_record(t, cfg) for t in loaded}, val_select=cfg.val_select)
    else:
        record["pair_set"] = pair_set_record(loaded[0], cfg)
    folder = os.path.isdir(cfg.ckpt_file)
    for path in models:
        model_start = time.time()
        try:
            network, batch_size = load_network(cfg, path)
        except DamagedFileError as err:
            if not folder:
                raise
            LOG.warning("skipped %s", err)  # the other checkpoints of the folder are evaluated
            record.setdefault("skipped", {})[path] = str(err)
            continue
        results = {t.target.label: evaluate_on(network, batch_size, t, cfg, json_path, path) for t in loaded}
        if multi:
            accuracies = {label: r["metrics"][cfg.fusion]["kfold"]["accuracy"] for label, r in results.items()}
            entry = {"targets": results, "score": selection_score(accuracies, cfg.val_select)}
            print(f"model={os.path.basename(path)} fusion={cfg.fusion}", flush=True)
            print(
                targets_table(
                    [
                        (label, len(t.pair_set), results[label]["metrics"][cfg.fusion])
                        for label, t in zip(results, loaded)
                    ]
                ),
                flush=True,
            )
        else:
            entry = next(iter(results.values()))
            print_single(entry, path, cfg.fusion)
        entry["seconds"] = round(time.time() - model_start, 1)
        record["models"][path] = entry
        write_json(record, json_path)  # kept if a later model of the folder fails
    models = list(record["models"])
    if not models:
        raise DamagedFileError(f"no checkpoint of {cfg.ckpt_file} could be read ({len(record['skipped'])} damaged)")
    best = max(models, key=lambda p: model_score(record["models"][p], cfg.fusion))
    record["best"] = best
    if len(models) > 1 and not multi:
        rows = [(os.path.basename(p), record["models"][p]["metrics"][cfg.fusion]) for p in models]
        print(results_table(rows, os.path.basename(best)), flush=True)
    elif len(models) > 1:
        print(
            f"best: {os.path.basename(best)} (val_select {cfg.val_select}: {record['models'][best]['score']:.4f})",
            flush=True,
        )
    record["seconds"] = round(time.time() - started, 1)
    write_json(record, json_path)
    LOG.info("metrics written to %s (%.1f s)", json_path, record["seconds"])
    return record


def model_score(entry, fusion):
    """What chooses the best model: the selection score with val_targets, else the 10-fold accuracy."""
    return entry["score"] if "targets" in entry else entry["metrics"][fusion]["kfold"]["accuracy"]
