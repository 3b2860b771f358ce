"""Export MTCNN's three networks (MINDIR / ONNX) for a deployment that detects before it embeds.

Each network becomes its own file, ``<base>_pnet``, ``<base>_rnet``, ``<base>_onet`` (``.mindir`` / ``.onnx``),
with a dynamic batch (P-Net also a dynamic height and width), and ``<base>_mtcnn.json`` records what a deployment
needs: input layout and normalisation, the outputs, the cascade's defaults and the pixel convention. The cascade
itself (pyramid, NMS, box regression, crops) is the NumPy code of ``src/detect/detector.py``.
"""

import json
import os

import mindspore as ms
import numpy as np

from src.data.image_io import INPUT_RECORD
from src.detect.detector import MAX_SIDE, PIXEL_SHIFT
from src.detect.weights import PACKAGE, load_nets

INPUT_SHAPES = {"pnet": [None, 3, None, None], "rnet": [None, 3, 24, 24], "onet": [None, 3, 48, 48]}
OUTPUTS = {
    "pnet": ["box_regression", "face_probability"],
    "rnet": ["box_regression", "face_probability"],
    "onet": ["box_regression", "landmarks", "face_probability"],
}
VERIFY_SHAPES = {"pnet": [(1, 3, 61, 47), (2, 3, 150, 150)], "rnet": [(5, 3, 24, 24)], "onet": [(5, 3, 48, 48)]}
EXTENSIONS = {"MINDIR": ".mindir", "ONNX": ".onnx"}
MAX_ABS_DIFF = 1e-4


def sidecar_record(paths, file_format):
    return {
        "networks": {
            name: {
                "file": os.path.basename(path),
                "input_shape": INPUT_SHAPES[name],
                "input_name": "image",
                "outputs": OUTPUTS[name],
            }
            for name, path in paths.items()
        },
        "file_format": file_format,
        **INPUT_RECORD,
        "outputs": {
            "box_regression": "(N, 4) offsets of x1, y1, x2, y2 in units of the box size (P-Net: "
            "(N, 4, h, w), one per 12x12 window at stride 2)",
            "face_probability": "(N,) (P-Net: (N, h, w)) softmax probability of 'face'",
            "landmarks": "(N, 10): x1..x5 then y1..y5 in units of the 48x48 crop's box",
        },
        "defaults": {
            "min_face": 20,
            "thresholds": [0.6, 0.7, 0.7],
            "factor": 0.709,
            "max_side": MAX_SIDE,
            "nms": {"pnet_per_scale": 0.5, "pnet": 0.7, "rnet": 0.7, "onet_min": 0.7},
            "resampling": "area (adaptive average pooling)",
        },
        "pixel_convention": f"the reference arithmetic's points minus {PIXEL_SHIFT} px = lfw_landmark.txt pixels",
        "weights": f"MTCNN (Zhang et al. 2016) from the {PACKAGE} wheel, MIT licence",
        "exported_by": f"MindSpore {ms.__version__}",
    }


def export_detector(weights, file_format, base):
    """Write the three networks and the sidecar; returns ({net: path}, sidecar path, the loaded nets)."""
    if file_format not in EXTENSIONS:
        raise ValueError(f"the detector exports as MINDIR or ONNX, not {file_format}")
    nets = load_nets(weights)
    paths = {}
    for name, shape in INPUT_SHAPES.items():
        path = f"{base}_{name}{EXTENSIONS[file_format]}"
        if os.path.exists(path):
            os.remove(path)  # MindSpore writes exported files read-only and does not replace them
        example = ms.Tensor(shape=shape, dtype=ms.float32)
        if file_format == "ONNX":
            ms.onnx.export(
                getattr(nets, name), example, file_name=path, input_names=["image"], output_names=OUTPUTS[name]
            )
        else:
            ms.export(getattr(nets, name), example, file_name=path[: -len(".mindir")], file_format="MINDIR")
        paths[name] = path
    sidecar = f"{base}_mtcnn.json"
    with open(sidecar, "w", encoding="utf-8") as f:
        json.dump(sidecar_record(paths, file_format), f, indent=2)
    return paths, sidecar, nets


def _runner(path):
    """A function NCHW float32 -> list of output arrays for the exported file ``path``."""
    if path.endswith(".mindir"):
        from mindspore import nn

        cell = nn.GraphCell(ms.load(path))
        return lambda x: [out.asnumpy() for out in cell(ms.Tensor(x))]
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"image": x})


def verify_detector(nets, paths, seed=0):
    """Max |difference| between each network and its exported file on seeded random inputs, per network."""
    rng = np.random.default_rng(seed)
    record = {}
    for name, path in paths.items():
        run = _runner(path)
        worst = 0.0
        for shape in VERIFY_SHAPES[name]:
            x = rng.uniform(-1, 1, shape).astype(np.float32)
            reference = [out.asnumpy() for out in getattr(nets, name)(ms.Tensor(x))]
            worst = max(worst, *(float(np.abs(a - b).max()) for a, b in zip(reference, run(x))))
        record[name] = {
            "max_abs_diff": worst,
            "shapes": VERIFY_SHAPES[name],
            "limit": MAX_ABS_DIFF,
            "passed": worst <= MAX_ABS_DIFF,
        }
    return record
