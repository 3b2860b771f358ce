"""``ordered_map``: a function over many tasks on a process pool, results streamed back in task order, with a
progress line (done, rate, ETA) every few seconds."""

import logging
import multiprocessing
import time

from src.model_utils.progress import format_duration

LOG = logging.getLogger("facerec.data")


def ordered_map(func, tasks, workers, what="images", log_every=10.0, chunksize=32):
    """Yield ``func(task)`` for each task in order, on ``workers`` spawn-started processes (in this process when
    1); logs progress every ``log_every`` seconds and at the end."""
    total = len(tasks)
    start = last = time.time()
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        stream = pool.imap(func, tasks, chunksize=chunksize) if pool else map(func, tasks)
        for done, result in enumerate(stream, 1):
            now = time.time()
            if now - last >= log_every or done == total:  # before the yield: a consumer may stop after the last
                rate = done / max(now - start, 1e-9)
                LOG.info(
                    "%d/%d %s (%.0f%%), %.1f/s, ETA %s",
                    done,
                    total,
                    what,
                    100.0 * done / total,
                    rate,
                    format_duration((total - done) / rate),
                )
                last = now
            yield result
    finally:
        if pool:
            pool.close()
            pool.join()
