"""Running an exported embedding network from Python: MINDIR with MindSpore's own runner
(``nn.GraphCell(mindspore.load(path))``), ONNX with onnxruntime."""

import os

import numpy as np

FORMATS = {".mindir": "MINDIR", ".onnx": "ONNX"}


def exported_format(path):
    """'MINDIR' or 'ONNX' by the file's extension; other files (AIR) cannot be run here."""
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise ValueError(
            f"{path}: only .mindir (MindSpore) and .onnx (onnxruntime) files can be run in Python; "
            "an AIR file runs only on Ascend through its toolchain"
        )
    return fmt


def mindir_error(path, err):
    """A RuntimeError saying which MindSpore wrote ``path`` when this MindSpore cannot load or run it."""
    import mindspore as ms

    from src.eval.mindir_info import read_mindir_info

    lines = [line.strip() for line in str(err).splitlines() if line.strip().strip("-")]
    detail = " ".join(lines[:2]) if lines else type(err).__name__
    return RuntimeError(
        f"MindSpore {ms.__version__} cannot run {path} ({read_mindir_info(path).describe()}; a "
        f"MindSpore Lite model from tools/to_lite.py runs only on the C++ harness): {detail}"
    )


def load_mindir(path):
    """``nn.GraphCell`` of a MINDIR written by this MindSpore (MindSpore Lite models need the C++ runtime), whatever
    the file's extension; a file cut short is refused as such before MindSpore tries it."""
    import mindspore as ms
    from mindspore import nn

    from src.eval.mindir_info import read_mindir_info
    from src.network.weights import DamagedFileError, named

    if not read_mindir_info(path).complete:
        raise DamagedFileError(
            f"{path}: truncated or damaged MINDIR (its graph runs past the end of the file, "
            f"{os.path.getsize(path)} bytes): copy or export it again"
        )
    try:
        with named(path, ".mindir") as name:
            return nn.GraphCell(ms.load(name))
    except (RuntimeError, ValueError, TypeError) as err:
        raise mindir_error(path, err) from err


def load_exported(path):
    """A function NCHW float32 array -> float32 embeddings that runs the exported file ``path``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"exported model not found: {path}")
    if exported_format(path) == "MINDIR":
        import mindspore as ms

        cell = load_mindir(path)
        return lambda x: cell(ms.Tensor(np.ascontiguousarray(x, np.float32))).asnumpy()
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]
