"""The export behind export.py (whose docstring gives the usage): the embedding network (backbone only, no
classifier) of a checkpoint to MINDIR, ONNX or AIR with its sidecar ``<file>.json`` (src/eval/sidecar.py, with its
``format_version``: the backbone, the preprocessing, the input shape, the embedding size and the config's
``fusion``, all infer.py and ``Predictor.from_export`` need; a threshold from eval.py's JSON with
``threshold_from``), the parity check of the
exported file against the checkpoint's network (``verify``), or the MTCNN detector (``export_detector``).
"""

import json
import logging
import os

import mindspore as ms
import numpy as np

from src.data.alignment import template_for
from src.data.image_io import INPUT_RECORD
from src.deploy.onnx_graph import repair_onnx
from src.deploy.parity import MAX_ABS_DIFF, MIN_COSINE, image_inputs, parity, random_inputs
from src.deploy.sidecar_threshold import threshold_from_eval
from src.eval.exported import load_exported
from src.eval.mindir_info import is_mindir
from src.eval.sidecar import read_record, sidecar_path, versioned
from src.model_utils.config import ConfigError
from src.model_utils.device import describe_device, init_device
from src.model_utils.logger import setup_logging
from src.network import build_backbone_from_config
from src.network.fold_bn import fold_batch_norms
from src.network.weights import load_backbone_weights

EXTENSIONS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
ONNX_INPUT, ONNX_OUTPUT = "image", "embedding"
LOG = logging.getLogger("facerec.export")


def export_name(cfg):
    """The exported file's path without extension: ``file_name``, else backbone, input size and batch."""
    height, width = cfg.image_size
    batch = "dyn" if cfg.dynamic_batch else f"b{cfg.export_batch_size}"
    return cfg.file_name or f"{cfg.backbone}_{height}x{width}_{batch}"


def preprocessing_record(cfg):
    """What a deployer needs to feed the exported network."""
    height, width = cfg.image_size
    record = versioned(
        {
            "backbone": cfg.backbone,
            "file_format": cfg.file_format,
            "input_shape": [None if cfg.dynamic_batch else cfg.export_batch_size, 3, height, width],
            "dynamic_batch": cfg.dynamic_batch,
            **INPUT_RECORD,
            "image_size": [height, width],
            "alignment_template": template_for(cfg.image_size).astype(np.float64).round(4).tolist(),
            "embedding_size": cfg.embedding_size,
            "output": "raw embedding (not L2-normalised)",
            "fusion": cfg.fusion,
            "checkpoint": cfg.ckpt_file,
            "exported_by": f"MindSpore {ms.__version__}",
        }
    )
    if cfg.file_format == "ONNX":
        record.update({"input_name": ONNX_INPUT, "output_name": ONNX_OUTPUT})
    return record


def check_request(cfg):
    """Refuse what cannot be done here before any work, with the reason."""
    if cfg.ckpt_file is None:
        raise ConfigError("config key 'ckpt_file' is not set: give the checkpoint to export")
    if cfg.file_format == "AIR":
        if cfg.device_target != "Ascend":
            raise ConfigError(
                "config key 'file_format': AIR can only be exported with device_target Ascend "
                "(MindSpore writes AIR only on the Ascend backend); use MINDIR or ONNX here"
            )
        if cfg.dynamic_batch:
            raise ConfigError("config key 'dynamic_batch': a dynamic batch is supported for MINDIR and ONNX, not AIR")
        if cfg.verify:
            raise ConfigError(
                "config key 'verify': --verify runs MINDIR (MindSpore) and ONNX (onnxruntime) files; "
                "an AIR file cannot be loaded back here: verify the MINDIR of the same checkpoint "
                "instead"
            )


def example_input(cfg):
    height, width = cfg.image_size
    if cfg.dynamic_batch:
        return ms.Tensor(shape=[None, 3, height, width], dtype=ms.float32)
    return ms.Tensor(np.zeros((cfg.export_batch_size, 3, height, width), np.float32))


def write_file(backbone, cfg, base):
    """Export ``backbone`` to ``base`` + extension; returns the path."""
    path = base + EXTENSIONS[cfg.file_format]
    if os.path.exists(path):
        os.remove(path)  # MindSpore writes exported files read-only (0400) and does not replace them
    if cfg.file_format == "ONNX":
        ms.onnx.export(
            backbone, example_input(cfg), file_name=path, input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT]
        )
        repair_onnx(path)
    else:
        ms.export(backbone, example_input(cfg), file_name=base, file_format=cfg.file_format)
    return path


def verify(backbone, cfg, path):
    """Run the checkpoint's network and the exported file on the same inputs; returns the parity record."""
    count = cfg.export_batch_size + (1 if cfg.dynamic_batch else 0)
    if cfg.verify_images:
        inputs, used = image_inputs(cfg.verify_images, count, cfg.image_size)
        source = f"{len(set(used))} images from {cfg.verify_images}"
    else:
        inputs, source = random_inputs(count, cfg.image_size, cfg.seed), f"random inputs (seed {cfg.seed})"
    reference = backbone(ms.Tensor(inputs)).asnumpy()
    run = load_exported(path)
    batches = [cfg.export_batch_size] + ([count] if cfg.dynamic_batch else [])
    on_cpu = cfg.device_target == "CPU"
    checks = [parity(reference[:n], run(inputs[:n]), on_cpu) for n in batches]
    record = {
        "inputs": source,
        "batch_sizes": batches,
        "max_abs_diff": max(c["max_abs_diff"] for c in checks),
        "min_cosine": min(c["min_cosine"] for c in checks),
        "limits": {"max_abs_diff": MAX_ABS_DIFF if on_cpu else None, "min_cosine": MIN_COSINE},
    }
    record["passed"] = all(c["passed"] for c in checks)
    return record


def load_backbone(cfg, fold_bn=False):
    """The checkpoint's backbone in inference mode, in MindSpore's own layers (with ``fold_bn``: its BatchNorms
    folded, src/network/fold_bn.py), and the number of BatchNorms folded."""
    if is_mindir(cfg.ckpt_file):
        raise ConfigError(
            f"config key 'ckpt_file': {cfg.ckpt_file} is an exported MINDIR, not a checkpoint: export from the "
            f"checkpoint it was exported from"
        )
    backbone = load_backbone_weights(build_backbone_from_config(cfg), cfg.ckpt_file, cfg.backbone)
    folded = fold_batch_norms(backbone) if fold_bn else 0
    backbone.set_train(False)
    return backbone, folded


def write_sidecar(path, record):
    with open(sidecar_path(path), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)


def export(cfg):
    """Export the network and write its sidecar; returns the exported file's path."""
    check_request(cfg)
    init_device(cfg)
    setup_logging()
    LOG.info(describe_device(cfg))
    record = preprocessing_record(cfg)
    if cfg.threshold_from:
        record["threshold"] = threshold_from_eval(
            cfg.threshold_from, cfg.ckpt_file, cfg.threshold_rule, cfg.threshold_target
        )
        LOG.info("threshold %.4f (%s) from %s", record["threshold"]["value"], cfg.threshold_rule, cfg.threshold_from)
    backbone, record["batch_norms_folded"] = load_backbone(cfg, cfg.fold_bn)
    path = write_file(backbone, cfg, export_name(cfg))
    write_sidecar(path, record)
    LOG.info("exported %s (+ %s.json)", path, path)
    return path


def verify_export(cfg, path):
    """The parity check of an export of ``cfg`` at ``path``: printed, added to the sidecar, and returned."""
    report = verify(load_backbone(cfg)[0], cfg, path)  # the checkpoint's network, BatchNorms unfolded
    record = read_record(path)
    record["parity"] = report
    write_sidecar(path, record)
    limits = f"max_abs_diff <= {MAX_ABS_DIFF:g}, min_cosine >= {MIN_COSINE}"
    if report["limits"]["max_abs_diff"] is None:
        limits = (
            f"min_cosine >= {MIN_COSINE}; max_abs_diff not bounded on {cfg.device_target}, whose float32 layers "
            f"run at lower precision"
        )
    print(
        f"verify {os.path.basename(path)} against {os.path.basename(cfg.ckpt_file)} on {report['inputs']}, "
        f"batch {'+'.join(map(str, report['batch_sizes']))}: max_abs_diff={report['max_abs_diff']:.3e} "
        f"min_cosine={report['min_cosine']:.8f} {'PASS' if report['passed'] else 'FAIL'} (limits: {limits})",
        flush=True,
    )
    return report


def export_detector_files(cfg):
    """``--export_detector``: the MTCNN networks; prints each path; returns the exit status."""
    from src.detect.export import export_detector, verify_detector

    init_device(cfg)
    setup_logging()
    LOG.info(describe_device(cfg))
    paths, sidecar, nets = export_detector(cfg.detector_weights, cfg.file_format, cfg.file_name or "mtcnn")
    passed = True
    if cfg.verify:
        report = verify_detector(nets, paths, cfg.seed)
        for name, row in report.items():
            print(
                f"verify {os.path.basename(paths[name])}: max_abs_diff={row['max_abs_diff']:.3e} "
                f"{'PASS' if row['passed'] else 'FAIL'} (limit {row['limit']:g})",
                flush=True,
            )
        passed = all(row["passed"] for row in report.values())
    for path in [*paths.values(), sidecar]:
        print(path, flush=True)
    return 0 if passed else 1


def run_export(cfg):
    """Export, and with ``verify`` check the export; prints the path last; returns the exit status."""
    if cfg.export_detector:
        return export_detector_files(cfg)
    path = export(cfg)
    report = verify_export(cfg, path) if cfg.verify else None
    print(path, flush=True)
    return 1 if report is not None and not report["passed"] else 0
