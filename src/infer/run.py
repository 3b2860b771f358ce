"""infer.py's run: the configuration, the device and the predictor, then the mode the arguments ask for.

With ``--config_path``, or a checkpoint, the config (default: the SphereFace recipe ``sphereface_config.yaml``)
describes the model. An exported MINDIR without ``--config_path`` needs no config at all: its sidecar gives the
input size, embedding size, fusion and threshold (``Predictor.from_export``), the schema's defaults the rest
(device CPU), ``--key=value`` arguments beat both. Two photos from a MINDIR run in PYNATIVE mode unless ``--mode``
is given: a one-shot call then compiles no detector graph, only the exported model's.
"""

import gc
import logging

from src.infer.export_config import given_keys, with_sidecar
from src.infer.inputs import landmark_lookup
from src.infer.modes import compare, embed_folder, search_gallery, search_threshold
from src.infer.predictor import Predictor
from src.model_utils.config import DEFAULT_CONFIG, load_config
from src.model_utils.device import describe_device, init_device
from src.model_utils.logger import setup_logging

LOG = logging.getLogger("facerec.infer")
ONE_SHOT_MODE = "PYNATIVE"


def infer_config(settings, one_shot):
    """The ``Config`` of a run: from the sidecar of a MINDIR given without ``--config_path`` (``one_shot``: in
    PYNATIVE mode unless ``--mode`` is given), else from the config file (default ``DEFAULT_CONFIG``)."""
    cfg = load_config(settings, entry="infer")
    if cfg.config_path is not None:
        return cfg
    if not str(cfg.ckpt_file or "").endswith(".mindir"):
        return load_config(settings, default_config=DEFAULT_CONFIG, entry="infer")
    cfg = with_sidecar(cfg, cfg.ckpt_file, given_keys(settings))
    if one_shot and "mode" not in given_keys(settings):
        cfg.mode = ONE_SHOT_MODE
    return cfg


def run_infer(args, settings):
    """Run the mode of infer.py's parsed ``args`` with the config arguments ``settings`` (``--config_path``,
    ``--key=value``); returns the exit status (1 when a query gave no face)."""
    cfg = infer_config(settings, one_shot=bool(args.images))
    init_device(cfg)
    setup_logging()
    LOG.info(describe_device(cfg))
    predictor = Predictor(cfg, detect=not (args.aligned or args.landmarks))
    # MindSpore runs gc.collect() before compiling each graph: what start-up made (modules, the schema, the
    # networks) lives to the end of the run, so it is frozen out of those collections.
    gc.freeze()
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
