"""Training checkpoints: written atomically with a CRC, the last K kept plus the best by validation accuracy, the
newest complete one found for resume, restored strictly.

A checkpoint is the ``TrainStep`` cell's Parameters (network, head state such as the A-Softmax iteration and the
AdaFace norm statistics, optimizer moments and global step, the loss-scale state) plus the run's ``RunState``
values. It is written to ``<name>.tmp.ckpt`` with MindSpore's CRC32 trailer and renamed into place, so a crash
or a full disk mid-write never replaces a good checkpoint with a broken one; a file without a valid trailer
(truncated or damaged afterwards) is reported and skipped when looking for the newest checkpoint. Sharded class
centres (Partial FC) are saved whole and cut to each worker's rows on restore, so a run resumes on any number of
workers.
"""

import glob
import logging
import os
import re

import mindspore as ms

from src.heads.head import legacy_names
from src.heads.partial_fc import shard_entries, sharded_parameters
from src.network.weights import DIVERGED_SUFFIX, CheckpointError, check_parameters, read_checkpoint
from src.train.optimizer import legacy_optimizer
from src.train.run_state import RunState

LOG = logging.getLogger("facerec.train")
PATTERN = re.compile(r"step_(\d+)\.ckpt$")
BEST_NAME = "best.ckpt"
# Parameters not restored: the per-step learning rates are rebuilt from the config and the run's lr_factor.
NOT_RESTORED = ("learning_rate",)


def checkpoint_path(folder, step):
    return os.path.join(folder, f"step_{step:08d}.ckpt")


def list_checkpoints(folder):
    """Step checkpoints in ``folder``, oldest first."""
    paths = [p for p in glob.glob(os.path.join(folder, "step_*.ckpt")) if PATTERN.search(p)]
    return sorted(paths, key=lambda p: int(PATTERN.search(p).group(1)))


def _remove(path):
    if os.path.exists(path):
        os.chmod(path, 0o600)
        os.remove(path)


def saved_parameters(cell, replace=None, leave_out=()):
    """[{name, data}] of ``cell``'s Parameters, with ``replace`` ({name: array}) taking the place of some and the
    names in ``leave_out`` left out."""
    replace = replace or {}
    return [
        {"name": p.name, "data": ms.Tensor(replace[p.name]) if p.name in replace else p}
        for p in cell.get_parameters()
        if p.name not in leave_out
    ]


def save_atomic(cell, path, extra=None, replace=None, leave_out=()):
    """Write ``cell``'s parameters (and ``extra`` values) with a CRC to ``path`` via a temporary file;
    ``replace`` / ``leave_out`` as in ``saved_parameters``."""
    tmp = path[: -len(".ckpt")] + ".tmp.ckpt"
    partial = [tmp, tmp[: -len(".ckpt")] + ".tmp"]  # ours, and the one mindspore.save_checkpoint writes first
    for name in partial:
        _remove(name)
    try:
        ms.save_checkpoint(saved_parameters(cell, replace, leave_out), tmp, append_dict=extra or {}, crc_check=True)
        os.replace(tmp, path)
    except Exception as err:
        for name in partial:
            _remove(name)
        raise CheckpointError(
            f"could not write checkpoint {path}: {err}; the checkpoints written before are intact"
        ) from err


def newest_complete(folder, before=None):
    """(path, entries) of the newest readable step checkpoint in ``folder`` (of a step below ``before`` when
    given), or None. Broken files are logged and skipped, so a truncated newest file falls back to the previous
    one."""
    paths = list_checkpoints(folder)
    if before is not None:
        paths = [p for p in paths if int(PATTERN.search(p).group(1)) < before]
    for path in reversed(paths):
        try:
            return path, read_checkpoint(path, require_crc=True)
        except CheckpointError as err:
            LOG.warning("%s; trying the previous checkpoint", err)
    return None


def find_resume(resume, folder):
    """The (path, entries) a run continues from, or None for a fresh start.

    ``resume`` "" (a new run): None, but a ``folder`` that already holds checkpoints is refused, so a run is
    never overwritten by accident; "auto": the newest complete checkpoint in ``folder``, None when there is none;
    otherwise a checkpoint file, or a folder (a run's output folder or its checkpoints folder) that must hold a
    complete checkpoint.
    """
    if not resume:
        existing = list_checkpoints(folder)
        if existing:
            raise CheckpointError(
                f"{folder} already holds checkpoints (newest: {os.path.basename(existing[-1])}): "
                f"pass --resume to continue that run, or choose another output_dir"
            )
        return None
    if resume == "auto":
        found = newest_complete(folder)
        if found is None:
            LOG.info("resume=auto: no complete checkpoint in %s, starting a new run", folder)
        return found
    if os.path.isdir(resume):
        inner = os.path.join(resume, "checkpoints")
        search = inner if os.path.isdir(inner) else resume
        found = newest_complete(search)
        if found is None:
            raise CheckpointError(f"config key 'resume': no complete checkpoint (step_*.ckpt) in {search}")
        return found
    return resume, read_checkpoint(resume, require_crc=True)


def restore(cell, entries, path):
    """Load the Parameters of ``entries`` (from ``read_checkpoint(path)``) into ``cell``; returns the
    ``RunState``. Every Parameter of the cell must be there with its shape, and nothing else: a mismatch raises
    ``CheckpointMismatchError`` naming the parameter (another backbone, head or class count)."""
    state = RunState.from_entries(entries)
    entries = shard_entries(cell, legacy_optimizer(legacy_names(entries)))
    params = {
        name: value for name, value in entries.items() if name not in RunState.keys() and name not in NOT_RESTORED
    }
    expected = {p.name: p.shape for p in cell.get_parameters() if p.name not in NOT_RESTORED}
    check_parameters(expected, params, path, hint=f"the checkpoint was written by {state.describe_model()}")
    # The parameters not restored keep their values (named, so MindSpore does not warn that they are not loaded).
    params.update({p.name: p for p in cell.get_parameters() if p.name in NOT_RESTORED})
    ms.load_param_into_net(cell, params, strict_load=True)
    return state


class CheckpointManager:
    """``step_XXXXXXXX.ckpt`` files in ``folder`` (the newest ``keep`` kept) and ``best.ckpt``."""

    def __init__(self, folder, keep):
        self.folder, self.keep = folder, keep
        os.makedirs(folder, exist_ok=True)

    def remove_partial(self):
        """Delete temporaries a killed save left behind (``*.tmp.ckpt``, ``*.tmp.tmp``); call before saving."""
        for path in glob.glob(os.path.join(self.folder, "*.tmp.ckpt")) + glob.glob(
            os.path.join(self.folder, "*.tmp.tmp")
        ):
            LOG.info("removing %s (a save interrupted by the end of a previous run)", path)
            _remove(path)

    @property
    def best_path(self):
        return os.path.join(self.folder, BEST_NAME)

    def save(self, cell, state, centres=None):
        """Write the checkpoint of ``state.step``, then drop the oldest beyond ``keep``. ``centres``: the full
        matrices of sharded class centres (``gather_sharded``), saved in place of this worker's rows."""
        path = checkpoint_path(self.folder, state.step)
        save_atomic(cell, path, state.to_entries(), replace=centres)
        for old in list_checkpoints(self.folder)[: -self.keep]:
            _remove(old)
        LOG.info("saved checkpoint %s", path)
        return path

    def save_best(self, cell, state):
        """best.ckpt is for evaluation and export: sharded class centres (this worker's rows only) are left out."""
        save_atomic(cell, self.best_path, state.to_entries(), leave_out=set(sharded_parameters(cell)))
        LOG.info("saved %s (validation accuracy %.4f at step %d)", self.best_path, state.best_accuracy, state.step)
        return self.best_path

    def set_aside(self, first_step):
        """Rename the step checkpoints of ``first_step`` and later to ``step_N.diverged.ckpt`` (no longer found by
        resume or rollback, still there to inspect): weights that led into non-finite losses."""
        for path in list_checkpoints(self.folder):
            if int(PATTERN.search(path).group(1)) >= first_step:
                aside = path[: -len(".ckpt")] + DIVERGED_SUFFIX
                os.replace(path, aside)
                LOG.warning("set aside %s as %s: non-finite losses followed it", path, os.path.basename(aside))

    def newest(self, before=None):
        return newest_complete(self.folder, before)
