"""Logging to the console and to ``<output_dir>/log_rank<r>.txt``."""
import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(message)s"
_handlers = []


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
        _handlers.append(logging.FileHandler(os.path.join(output_dir, f"log_rank{rank}.txt")))
    for handler in _handlers:
        handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return logging.getLogger("facerec")
