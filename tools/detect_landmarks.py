"""Raw photos -> 5-point landmark list, with MTCNN (src/detect): the step before alignment and training.

  python tools/detect_landmarks.py --root ROOT [--list RELPATHS.txt] --output LIST.txt [--report REPORT.json]
      [--labels] [--workers N] [--batch_size 16] [--min_face 20] [--detector_weights PATH]

Writes one line per image, ``relpath<TAB>x1<TAB>y1 ... x5<TAB>y5`` (left eye, right eye, nose, left and right
mouth corner, image-left first; pixels, two decimals): the layout of SphereFace's ``lfw_landmark.txt``, read by
``--eval_landmarks`` and ``tools/align_dataset.py --landmarks``. With --labels ROOT is an identity-folder tree
(``ROOT/<identity>/<image>``) and each line is ``relpath label x1 ... y5``, label = the identity's position in
sorted order (as tools/make_list.py): a ``list_format: sphereface`` training list (``train_root ROOT``); the
mapping ``label<TAB>identity`` goes to ``<output>.classes.txt``.

Images: those named in --list (the first field of each line), else every image under ROOT. Rules:
  one face       written;
  several faces  the face nearest the image centre is written (ties: the larger box) and the image counted;
  no face, image smaller than --min_face, unreadable (missing, empty, corrupt)   skipped and counted.
The report (default ``<output>.report.json``) gives the counts and every skipped or several-face image.

Resumable: lines go to ``<output>.partial`` and skips to ``<output>.skipped.tsv`` as batches finish; a run killed
at any point continues from there when started again with the same arguments, and the output appears under its
name only when every image is done (an existing output is never overwritten). Progress (images/s, ETA) is
logged every 10 s. --workers N runs N processes, each with its own detector (default: one per two cores); they
end with the tool, even when it is killed with kill -9 (``src/data/parallel.py``).
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
from src.data.identity_tree import IMAGE_EXTENSIONS, scan_identity_tree
from src.data.parallel import worker_pool
from src.data.readers import format_line
from src.data.samples import write_class_names
from src.data.text_lines import text_lines

LOG = logging.getLogger("facerec.detect_landmarks")
_worker = {}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="folder of the raw images")
    parser.add_argument("--list", help="images to process, relative to --root (first field of each line)")
    parser.add_argument("--output", required=True, help="landmark list to write (must not exist)")
    parser.add_argument("--report", help="JSON report (default: <output>.report.json)")
    parser.add_argument(
        "--labels",
        action="store_true",
        help="ROOT is ROOT/<identity>/<image>: write 'relpath label x1 ... y5' (list_format sphereface)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 1) // 2),
        help="detector processes (default: one per two cores)",
    )
    parser.add_argument("--batch_size", type=int, default=16, help="images per detector batch")
    parser.add_argument("--min_face", type=int, default=20, help="smallest face looked for, pixels")
    parser.add_argument(
        "--detector_weights",
        help="MTCNN weights: converted .ckpt, facenet-pytorch wheel, or a "
        "folder with pnet.pt rnet.pt onet.pt (default: cache / download)",
    )
    args = parser.parse_args(argv)
    args.report = args.report or args.output + ".report.json"
    return args


def image_list(args):
    """(relpaths in order, {relpath: label} or None, class names or None)."""
    if not os.path.isdir(args.root):
        raise FileNotFoundError(f"image folder not found: {args.root}")
    if args.list:
        relpaths = [text.split()[0] for _, text in text_lines(args.list)]
    elif args.labels:
        relpaths = [p for paths in scan_identity_tree(args.root).values() for p in paths]
    else:
        relpaths = sorted(
            os.path.relpath(os.path.join(folder, name), args.root)
            for folder, _, names in os.walk(args.root)
            for name in names
            if name.lower().endswith(IMAGE_EXTENSIONS)
        )
    if not args.labels:
        return relpaths, None, None
    names = sorted({p.split("/", 1)[0] for p in relpaths if "/" in p})
    flat = [p for p in relpaths if "/" not in p]
    if flat:
        raise ValueError(f"--labels needs ROOT/<identity>/<image>; {flat[0]} is not in an identity folder")
    index = {name: label for label, name in enumerate(names)}
    return relpaths, {p: index[p.split("/", 1)[0]] for p in relpaths}, names


def _init_worker(weights, min_face, threads):
    import mindspore as ms

    from src.detect import FaceDetector
    from src.model_utils.cpu_isa import apply_cpu_isa
    from src.model_utils.device import set_cpu_threads

    apply_cpu_isa("auto")  # MTCNN's nn.Conv2d: the NCHW path (src/model_utils/cpu_isa.py), before the first operator
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    set_cpu_threads(threads)
    _worker["detector"] = FaceDetector(weights, min_face=min_face)


def _detect_chunk(task):
    from src.detect.files import detect_files

    root, relpaths = task
    return detect_files(_worker["detector"], root, relpaths)


def _read_journal(path, skipped=False):
    """Relpaths already done according to a journal file; a line cut short by a kill is dropped (and truncated)."""
    if not os.path.isfile(path):
        return {}
    with open(path, "rb") as f:
        data = f.read()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(path, "r+b") as f:
            f.truncate(len(complete))
    rows = {}
    for line in complete.decode("utf-8").splitlines():
        fields = line.split("\t")
        rows[fields[0]] = fields[1:] if skipped else None
    return rows


def landmark_line(result, labels):
    points = result.landmarks.round(2)
    if labels is not None:
        return format_line("sphereface", result.relpath, labels[result.relpath], points)
    return "\t".join([result.relpath] + [format(float(v), ".7g") for v in points.ravel()])


def run(args):
    """Detect, write the list and the report; returns the report dict."""
    if os.path.exists(args.output):
        raise FileExistsError(f"{args.output} exists; choose another --output or delete it (nothing was done)")
    relpaths, labels, names = image_list(args)
    partial, journal = args.output + ".partial", args.output + ".skipped.tsv"
    written, skipped = _read_journal(partial), _read_journal(journal, skipped=True)
    several = set(_read_journal(args.output + ".several.tsv"))
    todo = [p for p in relpaths if p not in written and p not in skipped]
    LOG.info(
        "%d images, %d already done, %d to detect with %d worker(s)",
        len(relpaths),
        len(relpaths) - len(todo),
        len(todo),
        args.workers,
    )
    chunks = [(args.root, todo[i : i + args.batch_size]) for i in range(0, len(todo), args.batch_size)]
    threads = max(1, len(os.sched_getaffinity(0)) // args.workers)
    from src.detect.weights import resolve_weights

    init = (resolve_weights(args.detector_weights), args.min_face, threads)  # fetched once, not per worker
    pool = worker_pool(args.workers, _init_worker, init) if args.workers > 1 else None
    if pool is None:
        _init_worker(*init)
    start = last = time.time()
    done = 0
    try:
        stream = pool.imap(_detect_chunk, chunks) if pool else map(_detect_chunk, chunks)
        with (
            open(partial, "a", encoding="utf-8") as out,
            open(journal, "a", encoding="utf-8") as skips,
            open(args.output + ".several.tsv", "a", encoding="utf-8") as multi,
        ):
            for results in stream:
                for result in results:
                    if result.landmarks is None:
                        skips.write(f"{result.relpath}\t{result.status}\t{result.detail}\n")
                        skipped[result.relpath] = [result.status, result.detail]
                        continue
                    if result.status == "several":
                        multi.write(f"{result.relpath}\t{result.faces}\n")
                        several.add(result.relpath)
                    out.write(landmark_line(result, labels) + "\n")
                    written[result.relpath] = None
                for f in (multi, out, skips):
                    f.flush()
                done += len(results)
                now = time.time()
                if now - last >= 10.0 or done == len(todo):
                    rate = done / max(now - start, 1e-9)
                    LOG.info(
                        "%d/%d images (%.0f%%), %d skipped, %.1f img/s, ETA %.0f s",
                        done,
                        len(todo),
                        100.0 * done / max(len(todo), 1),
                        len(skipped),
                        rate,
                        (len(todo) - done) / rate,
                    )
                    last = now
    finally:
        if pool:
            pool.close()
            pool.join()
    report = {
        "root": args.root,
        "output": args.output,
        "images": len(relpaths),
        "written": len(written),
        "several_faces_most_central_kept": len(several),
        "several_faces": sorted(several),
        "skipped": {
            reason: sorted(p for p, (status, _) in skipped.items() if status == reason)
            for reason in ("no_face", "too_small", "unreadable")
        },
        "skipped_details": {p: detail for p, (_, detail) in sorted(skipped.items())},
    }
    report["skipped_counts"] = {reason: len(paths) for reason, paths in report["skipped"].items()}
    if names is not None:
        report["classes"] = args.output + ".classes.txt"
        write_class_names(report["classes"], names)
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    os.replace(partial, args.output)
    for path in (journal, args.output + ".several.tsv"):
        os.remove(path)
    return report


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    from src.detect import WeightsError

    try:
        report = run(args)
    except (FileExistsError, FileNotFoundError, ValueError, WeightsError) as err:
        LOG.error("%s", err)
        return 2
    LOG.info(
        "%d of %d images written to %s (%d with several faces: the most central kept); skipped: %s; report %s",
        report["written"],
        report["images"],
        args.output,
        report["several_faces_most_central_kept"],
        ", ".join(f"{n} {reason}" for reason, n in report["skipped_counts"].items()),
        args.report,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
