"""Logging to the console and to ``<output_dir>/log_rank<r>.txt``."""

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(message)s"
_handlers = []


class LogFileHandler(logging.FileHandler):
    """The per-rank log file; when it cannot be written (a full disk on this worker, a lost mount) it says so once
    on stderr and logging goes on to the console only, instead of a traceback for every line."""

    broken = False

    def emit(self, record):
        if not self.broken:
            super().emit(record)

    def close(self):
        try:
            super().close()
        except OSError:
            if not self.broken:
                raise  # else: the lines the full disk refused, reported already

    def handleError(self, record):
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):
            super().handleError(record)
            return
        self.broken = True
        sys.stderr.write(
            f"WARNING cannot write the log file {self.baseFilename}: {err.strerror or err}; logging to "
            f"the console only from now on\n"
        )


def setup_logging(output_dir=None, rank=0):
    """Route INFO logs to stdout (and a per-rank file); calling it again replaces only the handlers it added."""
    root = logging.getLogger()
    for handler in _handlers:
        root.removeHandler(handler)
        handler.close()
    _handlers.clear()
    _handlers.append(logging.StreamHandler(sys.stdout))
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        _handlers.append(LogFileHandler(os.path.join(output_dir, f"log_rank{rank}.txt")))
    for handler in _handlers:
        handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return logging.getLogger("facerec")
