"""MTCNN (src/detect) on LFW against the SphereFace landmarks: the detection acceptance figures.

    python benchmarks/bench_detect.py [--images 300] [--seed 0] [--batch_size 16] [--mode GRAPH|PYNATIVE]
        [--variant original|tight|grey|tight_grey] [--no_retry] [--output benchmarks/results/detect.json]

A fixed random sample (``--seed``) of ``images_150`` images that ``lfw_landmark_150.txt`` lists; for each the
face kept by the rule of tools/detect_landmarks.py (the most central) is compared with the reference: error =
mean distance of the 5 points / reference inter-ocular distance. Prints faces found, median error, share above
0.1, the mean x/y offset (the pixel convention), how often the most central face is the best-matching one where
several were found, and seconds per image (steady state after the first, compiling batch; and including it).

``--variant`` detects on copies made in a temporary folder (deleted at the end): ``tight`` crops each image to a
square of ``--tight_side`` x the landmarks' extent around their centre (the face filling the image: 2 is about
the framing of 112x96 aligned crops, 1.6 cuts at the brows and chin), ``grey`` turns it to greyscale (three
equal channels), ``tight_grey`` does both; the reference points move with the crop. ``--no_retry`` turns off the
detector's retry on images where nothing was found (the miss rate before it).
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2
import mindspore as ms
import numpy as np

from benchmarks.common import load_average, machine
from src.data.image_io import load_rgb
from src.data.landmarks import read_landmarks
from src.detect import FaceDetector
from src.model_utils.device import set_cpu_threads

LFW = os.path.join(ROOT, "..", "shared", "data", "lfw")
VARIANTS = ("original", "tight", "grey", "tight_grey")


def normalised_error(points, reference):
    return float(np.linalg.norm(points - reference, axis=1).mean() / np.linalg.norm(reference[1] - reference[0]))


def sample(count, seed):
    table = read_landmarks(os.path.join(LFW, "lfw_landmark_150.txt"))
    present = sorted(p for p in table if os.path.isfile(os.path.join(LFW, "images_150", p)))
    return random.Random(seed).sample(present, count), table


def make_variant(variant, relpaths, table, folder, tight_side):
    """Write the ``variant`` of each image under ``folder``; returns the reference landmarks of the copies."""
    moved = {}
    for relpath in relpaths:
        image, points = load_rgb(os.path.join(LFW, "images_150", relpath)), table[relpath]
        if variant.startswith("tight"):
            side = tight_side * float((points.max(0) - points.min(0)).max())
            x0, y0 = np.maximum(np.round((points.max(0) + points.min(0)) / 2 - side / 2), 0).astype(int)
            image = image[y0 : y0 + round(side), x0 : x0 + round(side)]
            points = points - np.array([x0, y0], np.float32)
        if variant.endswith("grey"):
            image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        path = os.path.join(folder, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cv2.imwrite(path + ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))  # lossless: the pixels as cut
        moved[relpath] = points
    return moved


def evaluate(detector, relpaths, table, batch_size, folder, suffix=""):
    rows, durations = [], []
    for start in range(0, len(relpaths), batch_size):
        batch = relpaths[start : start + batch_size]
        images = [load_rgb(os.path.join(folder, p) + suffix) for p in batch]
        began = time.perf_counter()
        found = detector.detect_batch(images)
        durations.append((time.perf_counter() - began, len(batch)))
        for relpath, faces in zip(batch, found):
            reference = table[relpath]
            errors = [normalised_error(f.landmarks, reference) for f in faces]
            rows.append(
                {
                    "relpath": relpath,
                    "faces": len(faces),
                    "error": errors[0] if faces else None,
                    "central_is_best": bool(faces) and int(np.argmin(errors)) == 0,
                    "offset": (faces[0].landmarks - reference).mean(0).tolist() if faces else None,
                }
            )
    return rows, durations


def summary(rows, durations):
    found = [r for r in rows if r["faces"]]
    errors = np.array([r["error"] for r in found])
    several = [r for r in found if r["faces"] > 1]
    steady = durations[1:] or durations
    return {
        "images": len(rows),
        "found": len(found),
        "missed": [r["relpath"] for r in rows if not r["faces"]],
        "found_pct": 100.0 * len(found) / len(rows),
        "median_error": float(np.median(errors)),
        "mean_error": float(errors.mean()),
        "above_0.1_pct": 100.0 * float((errors > 0.1).mean()),
        "mean_offset_xy": np.mean([r["offset"] for r in found], axis=0).round(3).tolist(),
        "several_faces": len(several),
        "central_is_best": sum(r["central_is_best"] for r in several),
        "s_per_image": sum(d for d, _ in steady) / sum(n for _, n in steady),
        "s_per_image_with_compile": sum(d for d, _ in durations) / sum(n for _, n in durations),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--mode", choices=["GRAPH", "PYNATIVE"], default="GRAPH")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", choices=VARIANTS, default="original", help="images as stored, or copies")
    parser.add_argument("--tight_side", type=float, default=2.0, help="crop side / landmark extent (tight)")
    parser.add_argument("--no_retry", action="store_true", help="no second pass where nothing was found")
    parser.add_argument("--output", help="JSON with the summary and every image's row")
    args = parser.parse_args(argv)
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE if args.mode == "GRAPH" else ms.PYNATIVE_MODE)
    set_cpu_threads(args.threads)
    relpaths, table = sample(args.images, args.seed)
    load_before = load_average()
    detector = FaceDetector(retry=not args.no_retry)
    if args.variant == "original":
        rows, durations = evaluate(detector, relpaths, table, args.batch_size, os.path.join(LFW, "images_150"))
    else:
        with tempfile.TemporaryDirectory() as folder:
            table = make_variant(args.variant, relpaths, table, folder, args.tight_side)
            rows, durations = evaluate(detector, relpaths, table, args.batch_size, folder, ".png")
    result = summary(rows, durations)
    result.update(
        {
            "variant": args.variant,
            "tight_side": args.tight_side if args.variant.startswith("tight") else None,
            "retry": not args.no_retry,
            "seed": args.seed,
            "batch_size": args.batch_size,
            "mode": args.mode,
            "threads": args.threads,
            "load_before": load_before,
            "load_after": load_average(),
            "machine": machine(),
        }
    )
    print(
        "| images | faces found | median error | > 0.1 | mean offset x, y (px) | several faces: central = best "
        "| s/image (steady) | s/image (with compile) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {result['images']} | {result['found']} ({result['found_pct']:.1f} %) | {result['median_error']:.4f} "
        f"| {result['above_0.1_pct']:.1f} % | {result['mean_offset_xy'][0]:+.2f}, {result['mean_offset_xy'][1]:+.2f} "
        f"| {result['central_is_best']}/{result['several_faces']} | {result['s_per_image']:.3f} "
        f"| {result['s_per_image_with_compile']:.3f} |"
    )
    variant = f"{args.variant} x{args.tight_side:g}" if result["tight_side"] else args.variant
    print(
        f"{variant}, retry {'off' if args.no_retry else 'on'}, load {result['load_before']} -> "
        f"{result['load_after']}, {args.mode}, batch {args.batch_size}, {args.threads} threads, seed {args.seed}"
    )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump({"summary": result, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
