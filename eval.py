"""Pair verification of a checkpoint, every checkpoint in a folder, or an exported MINDIR.

    python eval.py --config_path CONFIG --ckpt_file CKPT_FILE_OR_DIR_OR_MINDIR \
        --val_targets '[{pairs: PAIRS, root: IMAGES, landmarks: LANDMARKS}]' [--fusion concat]
    python eval.py --config_path CONFIG --ckpt_file CKPT --val_targets '[lfw.bin, cfp_fp.bin, agedb_30.bin]'
    python eval.py --config_path CONFIG --ckpt_file CKPT --ijb IJB_C_ROOT --ijb_set IJBC

PAIRS is an LFW pairs file (``pairs.txt``, View 1 ``pairsDevTest.txt``), a ``label path1 path2`` list, or an
insightface ``.bin`` set (the item's ``format`` detects which). Prints ``LFWACC=... std=... thd=...`` (10-fold
protocol, fusion ``fusion``) per model, a line per fusion mode, a table with the best marked for a folder; writes
every metric, labelled with its protocol, as JSON, and beside it a per-pair score CSV, a ROC PNG (log FAR axis)
and a same/different score histogram PNG per model. With ``val_targets`` (several sets, see config_schema.yaml) it
prints one table per model (rows: targets; 10-fold accuracy +- std, AUC, EER, TAR@FAR=1e-3/1e-4). For every
model and set the JSON holds the thresholds a deployment can use (``thresholds``: FAR 1e-3, 1e-4, best accuracy;
``export.py --threshold_from`` copies one into the exported model's sidecar). With ``ijb`` it runs the IJB-B / IJB-C
1:1 and 1:N protocols instead (src/eval/ijb.py) and prints their table.
"""

import sys

from src.eval.evaluation import evaluate
from src.model_utils.cli import run_main
from src.model_utils.config import DEFAULT_CONFIG, load_config


def main(argv=None):
    evaluate(load_config(argv, description=__doc__, default_config=DEFAULT_CONFIG, entry="eval"))


if __name__ == "__main__":
    sys.exit(run_main(main))
