"""Input pipeline throughput on real LFW JPEGs next to sphere20a's training speed: is the pipeline the limit?

    python benchmarks/bench_data.py [--images 1024] [--batch 64] [--train_steps 3] [--train_ips X]

Stages, each in images/s: OpenCV decode alone and decode + 5-point alignment (one Python thread, no pipeline),
then the training pipeline itself (``create_train_dataset``: decode -> align with the 2-px jitter -> flip ->
(x - 127.5) / 128 -> CHW -> batch, drop_remainder) with 1 and 2 parallel workers, timed after its first batch.
The last row is sphere20a + A-Softmax (10,572 classes, 112x96) training with the project's train step in GRAPH
mode, timed after the compiling first step (or ``--train_ips`` measured elsewhere, e.g. bench_train.py).
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from src.data.alignment import align_face  # noqa: E402
from src.data.image_io import decode_rgb, load_rgb  # noqa: E402
from src.data.landmarks import read_landmarks  # noqa: E402
from src.data.samples import Sample  # noqa: E402

LFW = os.path.join(ROOT, "..", "shared", "data", "lfw")
SIZE = (112, 96)


def lfw_samples(count):
    table = read_landmarks(os.path.join(LFW, "lfw_landmark_150.txt"))
    relpaths = sorted(table)[:count]
    return [Sample(os.path.join(LFW, "images_150", p), i // 8, table[p], i + 1) for i, p in enumerate(relpaths)]


def time_loop(samples, work):
    start = time.perf_counter()
    for sample in samples:
        work(sample)
    return len(samples) / (time.perf_counter() - start)


def read_bytes(samples):
    data = []
    for sample in samples:
        with open(sample.path, "rb") as f:
            data.append(f.read())
    return data


def bench_decode(samples):
    encoded = dict(zip((s.path for s in samples), read_bytes(samples)))
    return time_loop(samples, lambda s: decode_rgb(encoded[s.path]))


def bench_decode_align(samples):
    return time_loop(samples, lambda s: align_face(load_rgb(s.path), s.landmarks, SIZE))


def bench_pipeline(samples, batch, workers):
    from src.data.dataset import create_train_dataset

    steps = len(samples) // batch
    dataset, _, source = create_train_dataset(
        samples, SIZE, batch, seed=1, random_flip=True, num_workers=workers, total_steps=steps, align_jitter=2
    )
    iterator = dataset.create_tuple_iterator(num_epochs=1)
    next(iterator)
    start = time.perf_counter()
    count = sum(1 for _ in iterator)
    assert not source.bad_paths
    return count * batch / (time.perf_counter() - start)


def bench_training(batch, steps):
    import mindspore as ms

    from src.kernels.accelerate import kernels_enabled
    from src.model_utils.config import load_config
    from src.model_utils.device import init_device
    from src.train.loop import build_training

    cfg = load_config(
        [
            f"--batch_size={batch}",
            "--device_target=CPU",
            "--mode=GRAPH",
            "--head={type: asoftmax, m: 4}",
            "--backbone=sphere20a",
        ]
    )
    init_device(cfg, kernels_enabled(cfg.cpu_kernels, cfg.device_target))  # as train.py does
    step_cell, _ = build_training(cfg, 10572, steps + 1, batch)
    rng = np.random.default_rng(0)
    image = ms.Tensor(rng.standard_normal((batch, 3) + SIZE).astype(np.float32))
    label = ms.Tensor(rng.integers(0, 10572, batch).astype(np.int32))
    step_cell(image, label)  # compiles
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = step_cell(image, label)[0]
        loss.asnumpy()
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1024, help="LFW images per measurement")
    parser.add_argument("--batch", type=int, default=64, help="pipeline batch size")
    parser.add_argument("--train_batch", type=int, default=32, help="sphere20a training batch size")
    parser.add_argument("--train_steps", type=int, default=3, help="timed sphere20a training steps")
    parser.add_argument("--train_ips", type=float, default=None, help="use this training img/s instead")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(LFW, "images_150")):
        sys.exit(f"real LFW ../shared/data/lfw ({os.path.abspath(LFW)}) is absent")
    samples = lfw_samples(args.images)
    read_bytes(samples)  # warm the page cache so every row reads from memory
    rows = [
        ("OpenCV decode (150x150 JPEG), 1 thread", "-", bench_decode(samples)),
        ("decode + align 112x96, 1 thread", "-", bench_decode_align(samples)),
    ]
    for workers in (1, 2):
        rows.append(
            (
                f"pipeline: decode+align+jitter+flip+normalize+CHW+batch {args.batch}",
                str(workers),
                bench_pipeline(samples, args.batch, workers),
            )
        )
    if args.train_ips is None:
        train_ips = bench_training(args.train_batch, args.train_steps)
        rows.append((f"sphere20a + A-Softmax training, GRAPH, batch {args.train_batch} (measured)", "-", train_ips))
    else:
        train_ips = args.train_ips
        rows.append(("sphere20a training (given with --train_ips)", "-", train_ips))
    print(f"\n{len(samples)} LFW images (images_150), os.cpu_count()={os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    print("| stage | workers | images/s | x training |")
    print("|---|---|---|---|")
    for name, workers, speed in rows:
        print(f"| {name} | {workers} | {speed:.{0 if speed >= 100 else 1}f} | {speed / train_ips:.0f} |")


if __name__ == "__main__":
    main()
