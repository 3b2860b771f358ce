"""Check a training dataset before a long run and write a JSON report; exit status 1 when it has errors.

Reports counts (images, classes, histogram of images per class), malformed lines, labels outside
0..num_classes-1, label gaps, duplicate paths, missing files, undecodable images and implausible landmarks (not
finite, outside their image, eyes below the mouth), each with its list line. Errors: malformed lines, out-of-range
labels, missing or undecodable images, implausible landmarks, one path listed with different labels, a list
without images. Warnings: label gaps, repeated paths.

  python tools/check_dataset.py --list data/CASIA-WebFace/casia_landmark.txt --format sphereface \\
      --root data/CASIA-WebFace --num_classes 10572 --report casia_check.json
--no_decode runs only the cheap part that train.py runs at start (no image is decoded).
"""

import argparse
import json
import logging
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # Run as a script: make `src` importable.
    sys.path.insert(0, ROOT)
from src.data.check import ERROR_KINDS, WARNING_KINDS, backslash_problem, dataset_report  # noqa: E402
from src.data.readers import READERS  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402

LOG = logging.getLogger("facerec.check_dataset")
SHOWN = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", required=True, help="training list (identity folder for folder, .rec for recordio)")
    parser.add_argument("--format", default="plain", choices=sorted(READERS), help="list format (as list_format)")
    parser.add_argument("--root", default="", help="folder the list's relative paths start from (train_root)")
    parser.add_argument("--num_classes", type=int, default=None, help="expected classes (default: from the list)")
    parser.add_argument("--no_decode", action="store_true", help="skip decoding (and so the landmark check)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decoding threads")
    parser.add_argument("--report", help="JSON report file (default: printed to stdout)")
    return parser.parse_args(argv)


def entry_line(report, kind, row):
    """A report row as ``file:line: message``, as the readers and train.py's start-of-run check name lines."""
    if kind == "malformed_lines":
        return f"{row['file']}:{row['line']}: {row['error']}"
    if kind == "label_gaps":
        return f"{report['list']}: label {row} has no image"
    if kind in ("duplicate_paths", "conflicting_duplicates"):
        lines, labels = row["lines"], row["labels"]
        return f"{report['list']}:{lines[0]}: {row['path']} is listed on lines {lines} with labels {labels}"
    where = f"{report['list']}:{row['line']}"
    detail = {
        "labels_out_of_range": lambda: f"label {row['label']} is outside 0..{report['classes'] - 1}",
        "missing_files": lambda: "image not found",
        "undecodable_images": lambda: row["error"],
        "bad_landmarks": lambda: row["problem"],
    }[kind]()
    return f"{where}: {row['path']}: {detail}"


def summarize(report):
    """Log the counts and the first few entries of every non-empty category, one ``file:line: message`` each."""
    per_class = report["images_per_class"]
    LOG.info(
        "%s: %d images, %d classes (%d with images), %d-%d images per class (mean %.1f)",
        report["list"],
        report["images"],
        report["classes"],
        report["classes_with_images"],
        per_class["min"],
        per_class["max"],
        per_class["mean"],
    )
    if not report["images"]:
        LOG.error("%s: the list has no images", report["list"])
    windows = [row for row in report["missing_files"] if "\\" in row["path"]]
    if windows:
        where = f"{report['list']}:{windows[0]['line']}"
        LOG.error("%s", backslash_problem(len(windows), where, windows[0]["path"], report["list"]))
    for kinds, log in ((ERROR_KINDS, LOG.error), (WARNING_KINDS, LOG.warning)):
        for kind in kinds:
            rows = report[kind] or []
            if rows:
                log("%s: %d%s", kind.replace("_", " "), len(rows), f" (the first {SHOWN})" if len(rows) > SHOWN else "")
                for row in rows[:SHOWN]:
                    log("%s", entry_line(report, kind, row))


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    if args.report:  # before the work, not after it
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
    report = dataset_report(
        args.list, args.format, args.root, args.num_classes, decode=not args.no_decode, workers=args.workers
    )
    summarize(report)
    text = json.dumps(report, indent=2)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        LOG.info("report written to %s", args.report)
    else:
        print(text)
    LOG.info("dataset %s", "OK" if report["ok"] else "has ERRORS")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
