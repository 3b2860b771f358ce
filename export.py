"""Export the embedding network (backbone only, no classifier) for inference, optionally checking it.

    python export.py --config_path CONFIG --ckpt_file CKPT [--file_format MINDIR|ONNX|AIR] [--export_batch_size N]
        [--dynamic_batch] [--image_size [H,W]] [--file_name PATH] [--verify [--verify_images FOLDER]]
        [--threshold_from EVAL_JSON [--threshold_rule far1e-3|far1e-4|best_acc] [--threshold_target NAME]]
    python export.py --export_detector [--file_format MINDIR|ONNX] [--file_name BASE] [--detector_weights W]
        [--verify]

``--export_detector`` exports the MTCNN face detector instead (src/detect/export.py): ``BASE_pnet``, ``BASE_rnet``,
``BASE_onet`` (default BASE ``mtcnn``) with dynamic batch, and ``BASE_mtcnn.json``; ``--verify`` compares each with
the MindSpore network (max abs diff <= 1e-4).

The input is the normalised RGB tensor (N, 3, H, W), (x - 127.5) / 128; the output the raw embedding. The file is
``<backbone>_<H>x<W>_b<N>.<mindir|onnx|air>`` (``_dyn`` for a dynamic batch) unless ``file_name`` is given. A
sidecar ``<file>.json`` records the preprocessing, the input shape and the embedding size. AIR needs the Ascend
backend; a dynamic batch is for MINDIR and ONNX. ``mindspore.onnx.export`` works once per process, so export one
ONNX file per run of this script. ``--threshold_from`` copies a cosine threshold that eval.py measured for this
checkpoint into the sidecar (``threshold``); the predictor and infer.py use it by default.

``--verify`` then runs the checkpoint and the exported file (MINDIR: ``mindspore.load`` + ``nn.GraphCell``; ONNX:
onnxruntime) on the same batch of ``export_batch_size`` inputs (a dynamic export also on one input more): seeded
random normalised inputs, or the aligned images of ``verify_images``. It prints the max abs difference and the
minimum cosine, records them in the sidecar, and exits 1 unless max abs diff <= 1e-4 and cosine >= 0.99999.
"""

import sys

from src.deploy.export_model import run_export
from src.model_utils.cli import run_main
from src.model_utils.config import DEFAULT_CONFIG, load_config


def main(argv=None):
    return run_export(load_config(argv, description=__doc__, default_config=DEFAULT_CONFIG, entry="export"))


if __name__ == "__main__":
    sys.exit(run_main(main))
