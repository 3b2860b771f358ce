"""Every logged training value, as rows ``step,tag,value`` of ``<output_dir>/metrics.csv`` and as TensorBoard
scalars (tensorboardX event files in ``<output_dir>/tensorboard``; view with ``tensorboard --logdir``).

Tags are ``train/loss``, ``train/accuracy``, ``train/lr``, ``train/images_per_sec``, ``val/accuracy``, ...
A resumed run first drops the rows after the step it resumes from (they were logged after that checkpoint and
are about to be redone) and tells TensorBoard to purge them too.
"""
import csv
import os

FIELDS = ("step", "tag", "value")


def read_metrics(path):
    """{tag: ([steps], [values])} from a metrics CSV."""
    series = {}
    with open(path, "r", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            steps, values = series.setdefault(row["tag"], ([], []))
            steps.append(int(row["step"]))
            values.append(float(row["value"]))
    return series


def _truncate_after(path, step):
    with open(path, "r", encoding="utf-8", newline="") as f:
        rows = [row for row in csv.DictReader(f) if int(row["step"]) <= step]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


class MetricsLog:
    """Appends to the CSV and the TensorBoard log of ``output_dir``; ``start_step`` > 0 when resuming."""

    def __init__(self, output_dir, start_step=0, tensorboard=True):
        self.path = os.path.join(output_dir, "metrics.csv")
        if os.path.exists(self.path):
            _truncate_after(self.path, start_step)
        else:
            with open(self.path, "w", encoding="utf-8", newline="") as f:
                csv.DictWriter(f, FIELDS).writeheader()
        self.file = open(self.path, "a", encoding="utf-8", newline="")
        self.writer = csv.DictWriter(self.file, FIELDS)
        self.board = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError as err:
                raise RuntimeError("config key 'tensorboard' is true but tensorboardX is not installed: "
                                   "pip install tensorboardX (see requirements.txt) or set tensorboard: false") from err
            self.board = SummaryWriter(os.path.join(output_dir, "tensorboard"),
                                       purge_step=start_step + 1 if start_step else None)

    def log(self, step, values, prefix):
        """Record ``values`` ({name: number}) at ``step`` under ``<prefix>/<name>``."""
        for name, value in values.items():
            tag = f"{prefix}/{name}"
            self.writer.writerow({"step": step, "tag": tag, "value": repr(float(value))})
            if self.board is not None:
                self.board.add_scalar(tag, float(value), step)
        self.file.flush()
        if self.board is not None:
            self.board.flush()

    def close(self):
        self.file.close()
        if self.board is not None:
            self.board.close()
