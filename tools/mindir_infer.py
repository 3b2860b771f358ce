"""The Python stand-in for ascend310_infer/face_infer: the same inputs, outputs and summary line, with MindSpore's
own MINDIR runner (``nn.GraphCell(mindspore.load(path))``) in place of MindSpore Lite.

    python tools/mindir_infer.py --model_path MODEL.mindir --input_dir DIR --output_dir DIR [--index_file FILE]
        [--device_type CPU|GPU|Ascend] [--device_id N] [--thread_num N] [--batch_size N] [--warmup N] [--image_size H W]

MODEL is the MINDIR export.py writes (MindSpore 2.x); a MindSpore Lite model from tools/to_lite.py needs the C++
harness. The input shape, batch included, is the exported one, read from the sidecar ``MODEL.json``;
``--batch_size`` (default 1) is used for a dynamic batch or when there is no sidecar (then ``--image_size H W`` is
needed). The last, partial batch is padded with zeros (their outputs are dropped). Inputs and outputs follow
ascend310_infer/README.md: ``DIR/index.txt``, one float32 C x H x W file per image, one float32 embedding file per
image under the same name. The last line on stdout is

    Summary: N images, embedding E, batch B, K batches, predict T ms, R images/s (with file I/O S images/s)
"""

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from src.deploy.bin_layout import INDEX_FILE, read_array, read_index, write_array  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402

LOG = logging.getLogger("facerec.mindir_infer")
BATCHES_PER_CHUNK = 16


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--model_path", required=True, help="MINDIR written by export.py")
    parser.add_argument("--input_dir", required=True, help="folder of float32 C*H*W .bin inputs")
    parser.add_argument("--output_dir", required=True, help="where <name> (float32 embedding) is written per input")
    parser.add_argument("--index_file", help="input names, relative to --input_dir (default: <input_dir>/index.txt)")
    parser.add_argument("--device_type", default="CPU", choices=["CPU", "GPU", "Ascend"])
    parser.add_argument("--device_id", type=int, default=0)
    parser.add_argument("--thread_num", type=int, default=2, help="CPU operator threads")
    parser.add_argument("--batch_size", type=int, default=1, help="batch for a dynamic-batch model (default 1)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of the first batch (at least 1)")
    parser.add_argument(
        "--image_size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="input height and width when the model has no sidecar <model>.json",
    )
    return parser.parse_args(argv)


def model_input_shape(args):
    """(batch, C, H, W) the model is fed: from export.py's sidecar ``<model>.json`` (a dynamic batch there, or no
    sidecar: ``--batch_size``; no sidecar: ``--image_size``)."""
    sidecar = args.model_path + ".json"
    if os.path.isfile(sidecar):
        with open(sidecar, encoding="utf-8") as f:
            batch, channels, height, width = json.load(f)["input_shape"]
        return (batch if batch else args.batch_size), channels, height, width
    if not args.image_size:
        raise ValueError(f"no {sidecar} (written by export.py) to give the input size: pass --image_size H W")
    return (args.batch_size, 3, *args.image_size)


def init_mindspore(args):
    import mindspore as ms

    from src.model_utils.cpu_isa import apply_cpu_isa
    from src.model_utils.device import set_cpu_threads

    apply_cpu_isa("auto", args.device_type)
    ms.set_device(args.device_type, 0 if args.device_type == "CPU" else args.device_id)
    ms.set_context(mode=ms.GRAPH_MODE)
    if args.device_type == "CPU":
        set_cpu_threads(args.thread_num)


def infer(args):
    """Run every input; returns (images, embedding size, batch, batches, predict seconds, total seconds)."""
    from src.eval.embed import run_batches
    from src.eval.exported import load_mindir, mindir_error

    started = time.time()
    names = read_index(args.index_file or os.path.join(args.input_dir, INDEX_FILE))
    init_mindspore(args)
    network = load_mindir(args.model_path)
    batch, *chw = model_input_shape(args)
    size = int(np.prod(chw))
    warm = np.repeat(read_array(os.path.join(args.input_dir, names[0]), size).reshape(1, *chw), batch, axis=0)
    try:
        for _ in range(max(args.warmup, 1)):  # the first run also tells whether MindSpore can run this model
            run_batches(network, warm, batch)
    except RuntimeError as err:
        raise mindir_error(args.model_path, err) from err
    predict, embedding = 0.0, None
    chunk = batch * BATCHES_PER_CHUNK
    for start in range(0, len(names), chunk):
        part = names[start : start + chunk]
        inputs = np.stack([read_array(os.path.join(args.input_dir, name), size) for name in part]).reshape(-1, *chw)
        tic = time.perf_counter()
        outputs = run_batches(network, inputs, batch)
        predict += time.perf_counter() - tic
        embedding = outputs.shape[1]
        for name, output in zip(part, outputs):
            write_array(os.path.join(args.output_dir, name), output)
        LOG.info("%d/%d images", min(start + chunk, len(names)), len(names))
    batches = -(-len(names) // batch)
    return len(names), embedding, batch, batches, predict, time.time() - started


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        images, embedding, batch, batches, predict, total = infer(args)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"Summary: {images} images, embedding {embedding}, batch {batch}, {batches} batches, predict "
        f"{predict * 1000:.1f} ms, {images / predict:.1f} images/s (with file I/O {images / total:.1f} images/s)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
