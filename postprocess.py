"""The embeddings the inference harness wrote -> the verification metrics of eval.py (10-fold protocol).

    python postprocess.py --infer_input_dir DIR --infer_result_dir RESULTS [--fusion concat] [--eval_output JSON]

DIR is preprocess.py's output (``pairs.json`` names each image's ``orig/`` and ``flip/`` input), RESULTS the
harness's (one float32 embedding per input, same name). The embeddings of each image and of its mirror image are
fused and scored by the same code as eval.py (src/eval), which prints the same ``LFWACC=`` line; every metric goes
to ``eval_output`` (default ``RESULTS/eval_result.json``).
"""

import json
import logging
import os
import sys

from src.deploy.bin_layout import read_arrays
from src.deploy.pair_record import read_pair_record
from src.eval.embed import fuse
from src.eval.report import accuracy_line, summary_line
from src.eval.verify import verification_metrics
from src.model_utils.cli import run_main
from src.model_utils.config import DEFAULT_CONFIG, ConfigError, load_config
from src.model_utils.logger import setup_logging

LOG = logging.getLogger("facerec.postprocess")


def read_embeddings(input_dir, result_dir):
    """(pairs.json record, PairSet, embeddings of the images, embeddings of their mirror images)."""
    record, pair_set = read_pair_record(input_dir)
    orig = read_arrays(result_dir, record["orig"])
    flip = read_arrays(result_dir, record["flip"])
    if orig.shape != flip.shape:
        raise ValueError(
            f"{result_dir}: the mirror images' embeddings have {flip.shape[1]} values, the images' {orig.shape[1]}"
        )
    return record, pair_set, orig, flip


def postprocess(cfg):
    setup_logging()
    for key in ("infer_input_dir", "infer_result_dir"):
        if getattr(cfg, key) is None:
            raise ConfigError(f"config key '{key}' is not set")
    record, pair_set, orig, flip = read_embeddings(cfg.infer_input_dir, cfg.infer_result_dir)
    LOG.info(
        "%d pairs, %d images x 2 embeddings of size %d from %s",
        len(pair_set.issame),
        len(orig),
        orig.shape[1],
        cfg.infer_result_dir,
    )
    metrics, _ = verification_metrics(fuse(orig, flip, cfg.fusion), pair_set)
    result = {"model": cfg.infer_result_dir, "fusion": cfg.fusion, "pairs": record["pairs_file"], "metrics": metrics}
    print(
        f"{accuracy_line(metrics)} model={os.path.basename(os.path.normpath(cfg.infer_result_dir))} "
        f"fusion={cfg.fusion}\n  {cfg.fusion:<6} {summary_line(metrics)}",
        flush=True,
    )
    output = cfg.eval_output or os.path.join(cfg.infer_result_dir, "eval_result.json")
    with open(output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    LOG.info("metrics written to %s", output)
    return result


def main(argv=None):
    postprocess(load_config(argv, description=__doc__, default_config=DEFAULT_CONFIG, entry="postprocess"))


if __name__ == "__main__":
    sys.exit(run_main(main))
