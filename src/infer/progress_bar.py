"""A one-line progress bar with rate and ETA for work over many images (infer.py folders, gallery enrolment)."""

import sys
import time

import numpy as np

from src.model_utils.progress import format_duration


class ProgressBar:
    """A one-line progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, total, width=30):
        self.total, self.width, self.start = total, width, time.time()
        self.tty = sys.stderr.isatty()
        self.next_report = 0.1

    def update(self, done):
        fraction = done / max(self.total, 1)
        if not self.tty and fraction < self.next_report and done < self.total:
            return
        self.next_report = np.floor(fraction * 10 + 1) / 10
        elapsed = time.time() - self.start
        rate = done / max(elapsed, 1e-9)
        filled = int(self.width * fraction)
        eta = (self.total - done) / max(rate, 1e-9)
        bar = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {rate:.1f} img/s ETA "
            f"{format_duration(eta)}"
        )
        sys.stderr.write(("\r" + bar) if self.tty else bar + "\n")
        if self.tty and done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
