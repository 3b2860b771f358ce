"""Offline aligner (seed CosFace's process_data.sh role): raw images + 5-point landmarks -> an aligned image
tree (112x96 SphereFace or 112x112 ArcFace template) + the training list.

  python tools/align_dataset.py --src_root data/CASIA-WebFace --list data/casia_landmark.txt \\
      --out_root data/CASIA-WebFace-112x96 [--image_size 112 96] [--workers N]
reads a sphereface landmark list (``relpath label x1 y1 ... x5 y5``) and writes ``OUT_ROOT/<relpath>`` (aligned,
same relative path) and ``OUT_ROOT.txt`` (``relpath label``, list_format plain, train_root OUT_ROOT). With
--landmarks FILE (``relpath x1 y1 ... x5 y5``, e.g. LFW's) instead of --list, it aligns the images and writes
no list. Runs on all cores, logs progress, skips and reports (``OUT_ROOT_report.json``) images that fail,
never writes into the source folder, and keeps images already aligned, so a re-run resumes (and rewrites the
list and the report).
"""

import argparse
import json
import logging
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # Run as a script: make `src` importable.
    sys.path.insert(0, ROOT)
from src.data.align_files import (  # noqa: E402
    AlignTask,
    SourceOverwriteError,
    align_file,
    check_output_location,
    write_atomic,  # noqa: E402
)
from src.data.landmarks import read_landmarks  # noqa: E402
from src.data.parallel import worker_pool  # noqa: E402
from src.data.readers import format_line, read_text_list  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402

LOG = logging.getLogger("facerec.align_dataset")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src_root", required=True, help="folder of the raw images (read only)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--list", help="sphereface landmark list: relpath label x1 y1 ... x5 y5")
    source.add_argument("--landmarks", help="landmark file without labels: relpath x1 y1 ... x5 y5")
    parser.add_argument("--out_root", required=True, help="folder of the aligned images (outside --src_root)")
    parser.add_argument("--out_list", help="training list to write (default: OUT_ROOT.txt)")
    parser.add_argument("--report", help="JSON report (default: OUT_ROOT_report.json)")
    parser.add_argument(
        "--image_size",
        type=int,
        nargs=2,
        default=(112, 96),
        metavar=("H", "W"),
        help="112 96 (SphereFace template) or 112 112 (ArcFace template)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    base = os.path.normpath(args.out_root)
    if args.list:
        args.out_list = args.out_list or base + ".txt"
    args.report = args.report or base + "_report.json"
    return args


def alignment_jobs(args):
    """[(line, relpath, label or None, AlignTask)] in list order."""
    size = tuple(args.image_size)
    if args.list:
        rows = [
            (s.line, os.path.relpath(s.path, args.src_root), s.label, s.landmarks)
            for s in read_text_list(args.list, args.src_root, "sphereface")
        ]
    else:
        rows = [(None, relpath, None, points) for relpath, points in read_landmarks(args.landmarks).items()]
    return [
        (
            line,
            relpath,
            label,
            AlignTask(os.path.join(args.src_root, relpath), os.path.join(args.out_root, relpath), points, size),
        )
        for line, relpath, label, points in rows
    ]


def run_tasks(tasks, workers, log_every=10.0):
    """Results of ``align_file`` in task order, on a spawn-started process pool when workers > 1."""
    results = []
    start = last = time.time()
    pool = worker_pool(workers) if workers > 1 else None
    try:
        stream = pool.imap(align_file, tasks, chunksize=32) if pool else map(align_file, tasks)
        for result in stream:
            results.append(result)
            now = time.time()
            if now - last >= log_every or len(results) == len(tasks):
                rate = len(results) / max(now - start, 1e-9)
                failed = sum(status == "failed" for status, _ in results)
                LOG.info(
                    "%d/%d images (%.0f%%), %d failed, %.0f img/s, ETA %.0f s",
                    len(results),
                    len(tasks),
                    100.0 * len(results) / len(tasks),
                    failed,
                    rate,
                    (len(tasks) - len(results)) / rate,
                )
                last = now
    finally:
        if pool:
            pool.close()
            pool.join()
    return results


def align_dataset(args):
    """Align every listed image; returns the report dict (also written to ``args.report``)."""
    check_output_location(args.src_root, args.out_root)
    inputs = {os.path.realpath(path) for path in (args.list, args.landmarks) if path}
    for path in filter(None, (args.out_list, args.report)):
        check_output_location(args.src_root, path)
        if os.path.realpath(path) in inputs:
            raise SourceOverwriteError(f"{path} is an input of this run; choose another output name")
    jobs = alignment_jobs(args)
    LOG.info(
        "aligning %d images from %s to %s at %dx%d with %d worker(s)",
        len(jobs),
        args.src_root,
        args.out_root,
        args.image_size[0],
        args.image_size[1],
        args.workers,
    )
    results = run_tasks([task for *_, task in jobs], args.workers)
    failed = [
        {"line": line, "path": task.source, "error": error}
        for (line, _, _, task), (status, error) in zip(jobs, results)
        if status == "failed"
    ]
    if args.out_list:
        lines = [
            format_line("plain", relpath, label) + "\n"
            for (_, relpath, label, _), (status, _) in zip(jobs, results)
            if status != "failed"
        ]
        write_atomic(args.out_list, "".join(lines).encode())
    report = {
        "src_root": args.src_root,
        "out_root": args.out_root,
        "out_list": args.out_list,
        "image_size": list(args.image_size),
        "images": len(jobs),
        "aligned": sum(status == "aligned" for status, _ in results),
        "already_aligned": sum(status == "exists" for status, _ in results),
        "failed": failed,
    }
    write_atomic(args.report, (json.dumps(report, indent=2) + "\n").encode())
    return report


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    report = align_dataset(args)
    for row in report["failed"]:
        LOG.warning("failed: %s (list line %s): %s", row["path"], row["line"], row["error"])
    LOG.info(
        "%d aligned, %d already there, %d failed; list: %s; report: %s",
        report["aligned"],
        report["already_aligned"],
        len(report["failed"]),
        args.out_list,
        args.report,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
