"""Every logged training value, as rows ``step,tag,value`` of ``<output_dir>/metrics.csv`` and as TensorBoard
scalars (tensorboardX event files in ``<output_dir>/tensorboard``; view with ``tensorboard --logdir``).

Tags are ``train/loss``, ``train/accuracy``, ``train/lr``, ``train/images_per_sec``, ``val/accuracy``, ...
A resumed run first drops the rows after the step it resumes from (they were logged after that checkpoint and
are about to be redone) and tells TensorBoard to purge them too.
"""

import csv
import io
import os

from src.train.output_files import write_error, write_text_atomic

FIELDS = ("step", "tag", "value")


def read_metrics(path):
    """{tag: ([steps], [values])} from a metrics CSV."""
    series = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            steps, values = series.setdefault(row["tag"], ([], []))
            steps.append(int(row["step"]))
            values.append(float(row["value"]))
    return series


def _truncate_after(path, step):
    with open(path, encoding="utf-8", newline="") as f:
        rows = [row for row in csv.DictReader(f) if int(row["step"]) <= step]
    text = io.StringIO()
    writer = csv.DictWriter(text, FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, text.getvalue())


class MetricsLog:
    """Appends to the CSV and the TensorBoard log of ``output_dir``; ``start_step`` > 0 when resuming."""

    def __init__(self, output_dir, start_step=0, tensorboard=True):
        self.path = os.path.join(output_dir, "metrics.csv")
        if os.path.exists(self.path):
            _truncate_after(self.path, start_step)
        else:
            write_text_atomic(self.path, ",".join(FIELDS) + "\r\n")
        self.file = open(self.path, "a", encoding="utf-8", newline="")
        self.writer = csv.DictWriter(self.file, FIELDS)
        self.board = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError as err:
                raise RuntimeError(
                    "config key 'tensorboard' is true but tensorboardX is not installed: "
                    "pip install tensorboardX (see requirements.txt) or set tensorboard: false"
                ) from err
            self.board = SummaryWriter(
                os.path.join(output_dir, "tensorboard"), purge_step=start_step + 1 if start_step else None
            )

    def log(self, step, values, prefix):
        """Record ``values`` ({name: number}) at ``step`` under ``<prefix>/<name>``."""
        try:
            for name, value in values.items():
                self.writer.writerow({"step": step, "tag": f"{prefix}/{name}", "value": repr(float(value))})
            self.file.flush()
        except OSError as err:
            raise write_error(self.path, err) from err
        for name, value in values.items():
            if self.board is not None:
                self.board.add_scalar(f"{prefix}/{name}", float(value), step)
        if self.board is not None:
            self.board.flush()

    def close(self):
        """Close the files; a failure to write what is still buffered is left to the error already raised."""
        try:
            self.file.close()
        except OSError:
            pass
        if self.board is not None:
            self.board.close()
