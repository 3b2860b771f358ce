"""Train a face-recognition network: config -> dataset -> backbone + margin head -> SGD -> checkpoints.

    python train.py --config_path sphereface_config.yaml [--key=value ...] [--resume[=auto|CKPT|FOLDER]]

Checkpoints (every save_interval steps, at each epoch end and at the end; the last keep_checkpoints kept, plus
best.ckpt by the validation score, val_select) hold the whole training state, so a run continued with --resume ends
exactly where an uninterrupted one would. Launchers for one device and data parallel: scripts/run_*.sh.
"""

import sys

from src.heads import margin_parameters
from src.model_utils.cli import run_main
from src.model_utils.config import DEFAULT_CONFIG, load_config
from src.train.loop import train


def main(argv=None):
    train(load_config(argv, __doc__, DEFAULT_CONFIG, entry="train", block_variants={"head": margin_parameters}))


if __name__ == "__main__":
    sys.exit(run_main(main))
