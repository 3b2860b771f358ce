"""The training run behind train.py: config -> dataset -> backbone + margin head -> SGD -> checkpoints.

Checkpoints (every save_interval steps, at each epoch end and at the end; the last keep_checkpoints kept, plus
best.ckpt by the validation score, val_select) hold the whole training state, so a run continued with --resume ends
exactly where an uninterrupted one would.
"""

import json
import logging
import os
import time

from mindspore import Tensor, nn, ops

from src.data.check import load_training_list
from src.data.dataset import ImagesUnreachable, batches, create_train_dataset
from src.data.sampler import epoch_of_step, steps_per_epoch
from src.eval.targets import check_select, targets_from_config
from src.heads import build_head_from_config
from src.heads.partial_fc import gather_sharded
from src.kernels.accelerate import accelerate, kernels_enabled
from src.model_utils.config import ConfigError
from src.model_utils.device import describe_device, init_device
from src.model_utils.logger import setup_logging
from src.network import build_backbone_from_config
from src.train.amp import apply_amp, build_loss_scaler, check_amp
from src.train.checkpoint import CheckpointManager, find_resume, restore
from src.train.interrupt import StopSignals
from src.train.lr_schedule import learning_rates
from src.train.metrics_log import MetricsLog
from src.train.nan_guard import NonFiniteGuard, NonFiniteLossError
from src.train.optimizer import build_optimizer, set_learning_rates
from src.train.output_files import write_text_atomic
from src.train.progress import Progress
from src.train.run_lock import RunLock
from src.train.run_state import RunState
from src.train.train_network import FaceTrainNetwork
from src.train.train_step import TrainStep
from src.train.validation import Validator, track_best

LOG = logging.getLogger("facerec.train")
VAL_KEYS = ("accuracy", "std", "auc", "eer")


def check_train_config(cfg):
    """Settings that cannot work together stop before anything starts."""
    check_amp(cfg)
    if cfg.eval_interval and not cfg.val_targets:
        raise ConfigError(
            "config key 'eval_interval' is set but 'val_targets' is empty: give the validation pair set(s), "
            "e.g. val_targets: [{pairs: pairsDevTest.txt, root: IMAGES}]"
        )
    if cfg.early_stop_patience and not cfg.eval_interval:
        raise ConfigError("config key 'early_stop_patience' needs validation: set eval_interval and val_targets")
    check_select(cfg.val_select, targets_from_config(cfg))


def device_batch_size(cfg, group_size):
    """Images per step on this device: global_batch_size split over the workers, else batch_size."""
    if cfg.global_batch_size is None:
        return cfg.batch_size
    if cfg.global_batch_size % group_size:
        raise ConfigError(
            f"config key 'global_batch_size': {cfg.global_batch_size} images do not split evenly over "
            f"{group_size} workers; use a multiple of {group_size}"
        )
    return cfg.global_batch_size // group_size


def build_training(cfg, num_classes, total_steps, batch_size, rank=0, group_size=1):
    backbone = accelerate(build_backbone_from_config(cfg), cfg.cpu_kernels, cfg.device_target)
    backbone = apply_amp(backbone, cfg)
    head = build_head_from_config(cfg, num_classes, batch_size, group_size, rank)
    network = FaceTrainNetwork(backbone, head)
    lrs = learning_rates(
        total_steps, cfg.lr, cfg.lr_schedule, cfg.warmup_steps, cfg.lr_milestones, cfg.lr_gamma, cfg.min_lr
    )
    optimizer = build_optimizer(network.trainable_params(), lrs, cfg.momentum, cfg.weight_decay)
    step = TrainStep(network, optimizer, cfg.clip_grad_norm, build_loss_scaler(cfg))
    step.set_train(True)
    return step, lrs


def check_continues(path, saved, fresh):
    """The run of checkpoint ``path`` (its ``RunState`` ``saved``) is the one this config describes: the same
    backbone and head (checked before the weights are, so that the message names the run's head rather than a
    parameter of it), the same seed and global batch (with the step they fix the data order)."""
    for key, flag in (("backbone", "backbone"), ("head", "head.type")):  # same parameter shapes (CosFace,
        if getattr(saved, key) and getattr(saved, key) != getattr(fresh, key):  # ArcFace) would load silently
            raise ConfigError(
                f"{path} continues a run of {key}={getattr(saved, key)}, this config has "
                f"{getattr(fresh, key)}: resume with --{flag}={getattr(saved, key)}, or start a new "
                f"run in another output_dir"
            )
    for key in ("seed", "global_batch"):
        if getattr(saved, key) != getattr(fresh, key):
            raise ConfigError(
                f"{path} continues a run with {key}={getattr(saved, key)}, this config has "
                f"{getattr(fresh, key)}: the data order after step {saved.step} depends on it"
            )


def start_state(cfg, step_cell, lrs, fresh, checkpoint_folder):
    """The state to start from: ``fresh`` (a new run) or the one restored from the checkpoint ``cfg.resume``
    names. The seed and the global batch must be the run's: together with the step they fix the data order."""
    found = find_resume(cfg.resume, checkpoint_folder)
    state = fresh
    if found is not None:
        path, entries = found
        check_continues(path, RunState.from_entries(entries), fresh)
        state = restore(step_cell, entries, path)
        if state.num_images and state.num_images != fresh.num_images:
            LOG.warning(
                "%s continues a run over %d images, the list now has %d: the data order from step %d on "
                "differs from the original run's",
                path,
                state.num_images,
                fresh.num_images,
                state.step,
            )
        state.num_images = fresh.num_images
        LOG.info(
            "resumed from %s: step %d, epoch %d (saved on %d worker(s), now %d), lr factor %g",
            path,
            state.step,
            state.epoch,
            state.num_shards,
            fresh.num_shards,
            state.lr_factor,
        )
        state.num_shards = fresh.num_shards
    set_learning_rates(step_cell.optimizer, lrs * state.lr_factor)
    return state


def roll_back(step_cell, lrs, checkpoints, state, guard):
    """Restore the newest checkpoint from before the run of non-finite steps, with the learning rate lowered
    (the caller then renews ``step_cell``, see ``TrainStep.renewed``). The checkpoint of step k holds the weights
    step k + 1 runs with, so the one of the step just before the first non-finite step s is excluded too: it
    would run step s again with the same weights on the same batch."""
    found = checkpoints.newest(before=guard.streak_start - 1)
    if found is None:
        raise NonFiniteLossError(
            f"step {state.step}: non-finite losses since step {guard.streak_start} and no "
            f"checkpoint from before step {guard.streak_start - 1} to roll back to in "
            f"{checkpoints.folder}; lower lr and start again"
        )
    path, entries = found
    restored = restore(step_cell, entries, path)
    restored.lr_factor = state.lr_factor * guard.lr_factor
    restored.rollbacks = state.rollbacks + 1
    restored.num_shards = state.num_shards
    restored.best_accuracy, restored.best_step = state.best_accuracy, state.best_step
    restored.evals_since_best = state.evals_since_best
    set_learning_rates(step_cell.optimizer, lrs * restored.lr_factor)
    LOG.warning(
        "rolled back from step %d to %s (step %d); learning rate x%g from now on (rollback %d of at most %d)",
        state.step,
        path,
        restored.step,
        restored.lr_factor,
        restored.rollbacks,
        guard.max_rollbacks,
    )
    return restored


def judge_step(guard, state, finite, loss, step_cell, saver):
    """``guard.update`` for the step just done; when it gives up, the checkpoints that led into the non-finite
    steps are set aside first, so that a --resume with a lower lr starts from weights from before them."""
    try:
        scaler = step_cell.loss_scaler
        scale = None if scaler is None or finite else float(scaler.scale_value.asnumpy())
        return guard.update(state.step, finite, loss, scale, state.rollbacks)
    except NonFiniteLossError:
        if saver is not None and guard.streak_start is not None:  # None: overflows at scale 1, weights untouched
            saver.set_aside(guard.streak_start - 1)
        raise


class AnyRank(nn.Cell):
    """True on every rank when ``flag`` is true on any (a sum over ranks); decisions made on rank 0 only, such
    as early stopping, must reach all ranks or the others wait forever for its next gradients."""

    def __init__(self):
        super().__init__()
        self.allreduce = ops.AllReduce()

    def construct(self, flag):
        return self.allreduce(flag)


def train(cfg):
    check_train_config(cfg)
    rank, group_size = init_device(cfg, kernels_enabled(cfg.cpu_kernels, cfg.device_target))
    lock = RunLock(cfg.output_dir) if rank == 0 else None
    lock_warning = lock.acquire() if lock is not None else None
    try:
        with StopSignals() as signals:
            return run_training(cfg, rank, group_size, signals, lock_warning)
    finally:
        if lock is not None:
            lock.release()


def run_training(cfg, rank, group_size, signals, lock_warning=None):
    """The run of ``train`` once the output folder is locked and the stop signals are caught."""
    setup_logging(cfg.output_dir, rank)
    LOG.info(describe_device(cfg))
    if lock_warning:
        LOG.warning("%s", lock_warning)
    batch_size = device_batch_size(cfg, group_size)
    if cfg.train_list is None:
        raise ConfigError("config key 'train_list' is not set: give the training list file")
    samples, num_classes = load_training_list(
        cfg.train_list,
        cfg.list_format,
        cfg.train_root,
        cfg.num_classes,
        os.path.join(cfg.output_dir, "checkpoints") if rank == 0 else None,
        cfg.image_size,
    )
    LOG.info(
        "%d images of %d classes from %s; rank %d of %d", len(samples), num_classes, cfg.train_list, rank, group_size
    )

    epoch_steps = steps_per_epoch(len(samples), batch_size, group_size)
    total_steps = cfg.max_steps or cfg.epochs * epoch_steps
    if cfg.warmup_steps >= total_steps:
        LOG.warning(
            "warmup_steps=%d is not shorter than the run (%d steps): the learning rate never reaches lr=%g (it "
            "ends at %g); lower warmup_steps",
            cfg.warmup_steps,
            total_steps,
            cfg.lr,
            cfg.lr * min(total_steps / cfg.warmup_steps, 1.0),
        )
    step_cell, lrs = build_training(cfg, num_classes, total_steps, batch_size, rank, group_size)
    checkpoints = CheckpointManager(os.path.join(cfg.output_dir, "checkpoints"), cfg.keep_checkpoints)
    saver = checkpoints if rank == 0 else None
    if rank == 0:
        checkpoints.remove_partial()
    if rank > 0 and cfg.save_every_rank:
        saver = CheckpointManager(os.path.join(cfg.output_dir, f"checkpoints_rank{rank}"), cfg.keep_checkpoints)
    fresh = RunState(
        seed=cfg.seed,
        global_batch=batch_size * group_size,
        num_shards=group_size,
        backbone=cfg.backbone,
        head=cfg.head["type"],
        num_classes=num_classes,
        num_images=len(samples),
    )
    state = start_state(cfg, step_cell, lrs, fresh, checkpoints.folder)
    if state.step >= total_steps:
        LOG.info("the run is already complete (step %d of %d): nothing to do", state.step, total_steps)
        return step_cell
    if rank == 0:
        write_text_atomic(
            os.path.join(cfg.output_dir, "config.json"),
            json.dumps(dict(cfg.to_dict(), num_classes=num_classes), indent=2),
        )
    metrics = MetricsLog(cfg.output_dir, state.step, cfg.tensorboard) if rank == 0 else None
    validator = Validator(step_cell.network.backbone, cfg) if rank == 0 and cfg.eval_interval else None
    any_rank = AnyRank() if group_size > 1 else None
    guard = NonFiniteGuard(cfg.nan_policy, cfg.nan_patience, cfg.nan_lr_factor, cfg.nan_max_rollbacks)
    progress = Progress(total_steps, epoch_steps, state.global_batch, cfg.log_interval, state.step)
    LOG.info(
        "training %s + %s for steps %d..%d (%d per epoch), global batch %d",
        cfg.backbone,
        cfg.head["type"],
        state.step + 1,
        total_steps,
        epoch_steps,
        state.global_batch,
    )

    start, done, stop, bad_images, interrupted = time.time(), 0, False, 0, False
    try:
        while state.step < total_steps and not stop:
            dataset, _, source = create_train_dataset(
                samples,
                cfg.image_size,
                batch_size,
                seed=cfg.seed,
                random_flip=cfg.random_flip,
                num_workers=cfg.num_workers,
                num_shards=group_size,
                shard_id=rank,
                start_step=state.step,
                total_steps=total_steps,
                max_bad_fraction=cfg.max_bad_fraction,
                align_jitter=cfg.align_jitter,
            )
            for image, label in batches(dataset, source):
                loss, accuracy, finite = step_cell(image, label)
                signals.reinstall()
                loss = float(loss)
                state.step += 1
                state.epoch = epoch_of_step(state.step, epoch_steps)
                done += 1
                if done == 1:
                    LOG.info("first step (including graph compilation) took %.1f s", time.time() - start)
                    progress.reset(state.step)
                if judge_step(guard, state, bool(finite), loss, step_cell, saver) == "rollback":
                    state = roll_back(step_cell, lrs, checkpoints, state, guard)
                    if saver is not None:
                        saver.set_aside(guard.streak_start - 1)
                    step_cell = step_cell.renewed()
                    progress.reset(state.step)
                    break
                values = progress.update(
                    state.step, loss, float(accuracy), float(lrs[state.step - 1]) * state.lr_factor
                )
                if metrics is not None and values is not None:
                    metrics.log(state.step, {k: v for k, v in values.items() if k != "step"}, "train")
                if cfg.eval_interval and (state.step % cfg.eval_interval == 0 or state.step == total_steps):
                    stop = validate(validator, step_cell, state, cfg, metrics, saver)
                    if any_rank is not None:
                        stop = bool(any_rank(Tensor(float(stop))) > 0)
                if stop_requested(signals, any_rank):
                    stop = interrupted = True
                if (
                    state.step % cfg.save_interval == 0
                    or state.step % epoch_steps == 0
                    or state.step == total_steps
                    or stop
                ):
                    centres = gather_sharded(step_cell)  # every rank takes part; {} unless the centres are sharded
                    if saver is not None:
                        save_unless_skipping(saver, step_cell, state, guard, centres)
                if stop:
                    break
            bad_images += len(source.bad_paths)
    except ImagesUnreachable:
        if saver is not None and done:
            save_unless_skipping(saver, step_cell, state, guard)
        raise
    finally:
        if metrics is not None:
            metrics.close()
    LOG.info(
        "finished %d steps in %.1f s, at step %d of %d; %d updates skipped (non-finite), %d unreadable images skipped",
        done,
        time.time() - start,
        state.step,
        total_steps,
        guard.skipped,
        bad_images,
    )
    if interrupted:
        err = signals.interrupted(state.step)
        LOG.warning("%s", err)
        raise err
    return step_cell


def stop_requested(signals, any_rank):
    """True on every rank once any rank received a stop signal (so that all stop after the same step)."""
    received = signals.received is not None
    if any_rank is not None:
        received = bool(any_rank(Tensor(float(received))) > 0)
    return received


def save_unless_skipping(saver, step_cell, state, guard, centres=None):
    """Save a checkpoint (``centres``: the gathered sharded class centres, see ``gather_sharded``), except while
    updates are being skipped (a rollback must find the weights from before the non-finite steps, not a copy taken
    among them)."""
    if guard.skipping:
        LOG.warning(
            "step %d: no checkpoint saved while updates are skipped (%d non-finite steps in a row)",
            state.step,
            guard.in_a_row,
        )
        return None
    return saver.save(step_cell, state, centres)


def validate(validator, step_cell, state, cfg, metrics, saver):
    """Validation on rank 0 (other ranks: no-op): log it, keep best.ckpt, return the early-stop decision."""
    if validator is None:
        return False
    results, score = validator()
    for name, result in results.items():
        if result is not None:
            metrics.log(state.step, {key: result[key] for key in VAL_KEYS}, f"val/{name}" if name else "val")
    if None not in results and score is not None:
        metrics.log(state.step, {"accuracy": score}, "val")
    improved, stop = track_best(state, score, cfg.early_stop_patience)
    if improved and saver is not None:
        saver.save_best(step_cell, state)
    return stop
