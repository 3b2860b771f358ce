"""``ordered_map``: a function over many tasks on a process pool, results streamed back in task order, with a
progress line (done, rate, ETA) every few seconds. ``worker_pool``: the spawn-started pool every tool uses, whose
workers end with their parent (a parent killed with kill -9 or by the out-of-memory killer leaves no orphans)."""

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time

from src.model_utils.progress import format_duration

LOG = logging.getLogger("facerec.data")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def end_with_parent(parent_pid):
    """Make this process receive SIGKILL when its parent ends (Linux ``prctl(PR_SET_PDEATHSIG)``); a parent that
    ended before the call ends this process at once."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def _start_worker(parent_pid, initializer, initargs):
    end_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def worker_pool(workers, initializer=None, initargs=()):
    """A spawn-started ``multiprocessing`` pool of ``workers`` processes that end with this process (see
    ``end_with_parent``); ``initializer(*initargs)`` runs in each after that."""
    return multiprocessing.get_context("spawn").Pool(workers, _start_worker, (os.getpid(), initializer, initargs))


def ordered_map(func, tasks, workers, what="images", log_every=10.0, chunksize=32):
    """Yield ``func(task)`` for each task in order, on ``workers`` spawn-started processes (in this process when
    1); logs progress every ``log_every`` seconds and at the end."""
    total = len(tasks)
    start = last = time.time()
    pool = worker_pool(workers) if workers > 1 else None
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
