"""``python -m src.kernels``: compile every CPU kernel into the cache ahead of a run (otherwise they compile on first
use); prints each library's path, or the reason one cannot be built (exit 1)."""

import logging
import sys

from src.kernels.build import KernelBuildError
from src.kernels.library import build_all

logging.basicConfig(level=logging.INFO, format="%(message)s")
try:
    for path in build_all():
        print(path)
except KernelBuildError as error:
    sys.exit(f"error: {error}")
