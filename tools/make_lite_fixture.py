"""Regenerate the tiny MindSpore Lite test fixture in tests/fixtures/lite/.

    python tools/make_lite_fixture.py [--out-dir tests/fixtures/lite] [--python37 PYTHON] [--lite-home DIR]

A sphere4 backbone at width 0.125 (8/16/32/64 channels), embedding size 16, input 3x40x32, initialised
with MindSpore's seed 1234. Its PReLU slopes and biases are then drawn from a NumPy generator with the same
seed (the defaults, all slopes 0.25 and zero biases, would hide a slope broadcast over the wrong axis). It
writes:

  sphere4_tiny.ckpt            the MindSpore checkpoint (the reference for the tests)
  sphere4_tiny_b4.mindir       Lite MINDIR, fixed batch 4
  sphere4_tiny_dynamic.mindir  Lite MINDIR, dynamic batch (PRelu decomposed, see tools/to_lite.py)
  fixture.json                 the settings above, read by the tests

Each ONNX export runs in a fresh process (a second ``mindspore.onnx.export`` in one process fails);
tools/to_lite.py folds the PReLU slopes and converts it (it needs Python 3.7 and the unpacked
mindspore-lite wheel, see its docstring), and the fixed ONNX is checked against MindSpore with
onnxruntime. The same seed gives byte-identical files.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import to_lite  # noqa: E402  (tools/ is this script's folder)

SEED = 1234
SETTINGS = {"backbone": "sphere4", "width": 0.125, "embedding_size": 16, "image_size": [40, 32]}
CKPT = "sphere4_tiny.ckpt"
MODELS = {"b4": ("sphere4_tiny_b4.mindir", 4), "dynamic": ("sphere4_tiny_dynamic.mindir", None)}


def build_network():
    import mindspore as ms

    from src.network import build_backbone

    ms.set_seed(SEED)
    net = build_backbone(
        SETTINGS["backbone"],
        embedding_size=SETTINGS["embedding_size"],
        image_size=tuple(SETTINGS["image_size"]),
        width=SETTINGS["width"],
    )
    net.set_train(False)
    return net


def randomise_slopes_and_biases(net):
    import mindspore as ms

    rng = np.random.default_rng(SEED)
    for param in net.get_parameters():
        if param.name.endswith(".w"):
            param.set_data(ms.Tensor(rng.uniform(0.05, 0.5, param.shape).astype(np.float32)))
        elif param.name.endswith(".bias"):
            param.set_data(ms.Tensor(rng.normal(0.0, 0.1, param.shape).astype(np.float32)))


def export_onnx(ckpt_path, onnx_path, batch):
    """Export the checkpointed network to ONNX, batch ``batch`` or dynamic when None (one export per process)."""
    import mindspore as ms

    net = build_network()
    ms.load_param_into_net(net, ms.load_checkpoint(ckpt_path), strict_load=True)
    height, width = SETTINGS["image_size"]
    if batch is None:
        example = ms.Tensor(shape=[None, 3, height, width], dtype=ms.float32)
    else:
        example = ms.Tensor(np.zeros((batch, 3, height, width), np.float32))
    ms.onnx.export(net, example, file_name=onnx_path)


def check_fixed_onnx(fixed_onnx, net, batch):
    """The fixed ONNX must give MindSpore's outputs (onnxruntime, max abs difference <= 1e-5)."""
    import mindspore as ms
    import onnxruntime as ort

    height, width = SETTINGS["image_size"]
    x = np.random.default_rng(0).standard_normal((batch or 3, 3, height, width)).astype(np.float32)
    session = ort.InferenceSession(fixed_onnx, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    diff = float(np.abs(got - net(ms.Tensor(x)).asnumpy()).max())
    if diff > 1e-5:
        raise RuntimeError(f"{fixed_onnx} differs from MindSpore by {diff}")
    return diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--out-dir", default=os.path.join(REPO, "tests", "fixtures", "lite"))
    parser.add_argument("--lite-home", help="see tools/to_lite.py")
    parser.add_argument("--python37", help="see tools/to_lite.py")
    parser.add_argument("--export-onnx", nargs=3, metavar=("CKPT", "ONNX", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.export_onnx:  # the fresh process of one export
        ckpt_path, onnx_path, batch = args.export_onnx
        export_onnx(ckpt_path, onnx_path, None if batch == "dynamic" else int(batch))
        return 0

    import mindspore as ms

    os.makedirs(args.out_dir, exist_ok=True)
    net = build_network()
    randomise_slopes_and_biases(net)
    ckpt_path = os.path.join(args.out_dir, CKPT)
    if os.path.exists(ckpt_path):
        os.remove(ckpt_path)  # MindSpore writes checkpoints 0400
    ms.save_checkpoint(net, ckpt_path)
    os.chmod(ckpt_path, 0o644)

    with tempfile.TemporaryDirectory() as tmp:
        for key, (model_name, batch) in MODELS.items():
            onnx_path = os.path.join(tmp, f"{key}.onnx")
            fixed_path = os.path.join(tmp, f"{key}_fixed.onnx")
            subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--export-onnx",
                    ckpt_path,
                    onnx_path,
                    "dynamic" if batch is None else str(batch),
                ],
                check=True,
                cwd=tmp,
            )
            folded, decomposed = to_lite.to_lite(
                onnx_path,
                os.path.join(args.out_dir, model_name),
                fixed_onnx=fixed_path,
                lite_home=args.lite_home,
                python37=args.python37,
            )
            diff = check_fixed_onnx(fixed_path, net, batch)
            print(
                f"{model_name}: folded {folded} Unsqueeze node(s), decomposed {decomposed} PRelu node(s), "
                f"fixed ONNX vs MindSpore max abs diff {diff:.2e}"
            )

    meta = dict(
        SETTINGS,
        seed=SEED,
        checkpoint=CKPT,
        models={key: {"file": name, "batch": batch} for key, (name, batch) in MODELS.items()},
    )
    with open(os.path.join(args.out_dir, "fixture.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    sizes = {name: os.path.getsize(os.path.join(args.out_dir, name)) for name in sorted(os.listdir(args.out_dir))}
    print("wrote", ", ".join(f"{name} ({size} B)" for name, size in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
