"""Logging to the console and to ``<output_dir>/log_rank<r>.txt``."""
import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging(output_dir=None, rank=0):
    """Configure the root logger once per process; returns the package logger."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handlers = [logging.StreamHandler(sys.stdout)]
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(output_dir, f"log_rank{rank}.txt")))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return logging.getLogger("facerec")
