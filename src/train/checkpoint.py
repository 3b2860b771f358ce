"""Checkpoints written atomically (temporary file, then rename), the last K kept, the newest found for resume."""
import glob
import logging
import os
import re

import mindspore as ms

LOG = logging.getLogger(__name__)
PATTERN = re.compile(r"step_(\d+)\.ckpt$")


def checkpoint_path(folder, step):
    return os.path.join(folder, f"step_{step:08d}.ckpt")


def list_checkpoints(folder):
    """Step checkpoints in ``folder``, oldest first."""
    paths = [p for p in glob.glob(os.path.join(folder, "step_*.ckpt")) if PATTERN.search(p)]
    return sorted(paths, key=lambda p: int(PATTERN.search(p).group(1)))


def save_atomic(cell, path, extra=None):
    """Write ``cell``'s parameters (and ``extra`` values) to ``path`` via a temporary file: a crash or a full
    disk mid-write never replaces a good checkpoint with a broken one."""
    tmp = path[:-len(".ckpt")] + ".tmp.ckpt"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        ms.save_checkpoint(cell, tmp, append_dict=extra or {})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class CheckpointManager:
    """Saves ``step_XXXXXXXX.ckpt`` files into ``folder`` and keeps the newest ``keep``."""

    def __init__(self, folder, keep):
        self.folder, self.keep = folder, keep
        os.makedirs(folder, exist_ok=True)

    def save(self, cell, step, extra=None):
        path = checkpoint_path(self.folder, step)
        save_atomic(cell, path, dict(extra or {}, step=step))
        for old in list_checkpoints(self.folder)[:-self.keep]:
            os.remove(old)
        LOG.info("saved checkpoint %s", path)
        return path
