"""Train a face-recognition network: config -> dataset -> backbone + margin head -> SGD -> checkpoints.

    python train.py --config_path sphereface_config.yaml [--key=value ...]
"""
import json
import logging
import os
import sys
import time

import mindspore as ms

from src.data.check import load_training_list
from src.data.dataset import create_train_dataset
from src.data.sampler import steps_per_epoch
from src.heads import build_head_from_config
from src.model_utils.config import load_config
from src.model_utils.device import init_device
from src.model_utils.logger import setup_logging
from src.network import build_backbone_from_config
from src.train.checkpoint import CheckpointManager
from src.train.lr_schedule import learning_rates
from src.train.network import FaceTrainNetwork
from src.train.optimizer import build_optimizer
from src.train.progress import Progress
from src.train.train_step import TrainStep

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sphereface_config.yaml")
LOG = logging.getLogger("facerec.train")


def build_training(cfg, num_classes, total_steps):
    backbone = build_backbone_from_config(cfg)
    head = build_head_from_config(cfg, num_classes)
    network = FaceTrainNetwork(backbone, head, cfg.label_smoothing)
    lrs = learning_rates(total_steps, cfg.lr, cfg.lr_schedule, cfg.warmup_steps, cfg.lr_milestones,
                         cfg.lr_gamma, cfg.min_lr)
    optimizer = build_optimizer(network.trainable_params(), lrs, cfg.momentum, cfg.weight_decay)
    step = TrainStep(network, optimizer, cfg.clip_grad_norm)
    step.set_train(True)
    return step, lrs


def train(cfg):
    rank, group_size = init_device(cfg)
    setup_logging(cfg.output_dir, rank)
    if cfg.train_list is None:
        raise ValueError("config key 'train_list' is not set: give the training list file")
    samples, num_classes = load_training_list(cfg.train_list, cfg.list_format, cfg.train_root, cfg.num_classes,
                                              os.path.join(cfg.output_dir, "checkpoints") if rank == 0 else None)
    LOG.info("%d images of %d classes from %s; rank %d of %d", len(samples), num_classes, cfg.train_list,
             rank, group_size)

    total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch(len(samples), cfg.batch_size, group_size)
    dataset, sampler, source = create_train_dataset(
        samples, cfg.image_size, cfg.batch_size, seed=cfg.seed, random_flip=cfg.random_flip,
        num_workers=cfg.num_workers, num_shards=group_size, shard_id=rank, total_steps=total_steps,
        max_bad_fraction=cfg.max_bad_fraction, align_jitter=cfg.align_jitter)
    step_cell, lrs = build_training(cfg, num_classes, total_steps)
    checkpoints = CheckpointManager(os.path.join(cfg.output_dir, "checkpoints"), cfg.keep_checkpoints)
    if rank == 0:
        with open(os.path.join(cfg.output_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(dict(cfg.to_dict(), num_classes=num_classes), f, indent=2)

    progress = Progress(total_steps, sampler.steps_per_epoch, cfg.batch_size * group_size, cfg.log_interval)
    LOG.info("training %s + %s for %d steps (%d per epoch), global batch %d", cfg.backbone, cfg.head, total_steps,
             sampler.steps_per_epoch, cfg.batch_size * group_size)
    start = time.time()
    skipped = 0
    for step, (image, label) in enumerate(dataset.create_tuple_iterator(num_epochs=1), 1):
        loss, accuracy, finite = step_cell(image, label)
        if step == 1:
            LOG.info("first step (including graph compilation) took %.1f s", time.time() - start)
            progress.reset(1)
        if not finite:
            skipped += 1
            LOG.warning("step %d: non-finite loss or gradient (loss=%s); update skipped", step, loss)
        progress.update(step, float(loss), float(accuracy), float(lrs[step - 1]))
        if rank == 0 and (step % cfg.save_interval == 0 or step == total_steps):
            checkpoints.save(step_cell, step, {"epoch": (step - 1) // sampler.steps_per_epoch + 1})
    LOG.info("finished %d steps in %.1f s; %d updates skipped (non-finite), %d unreadable images skipped",
             total_steps, time.time() - start, skipped, len(source.bad_paths))
    return step_cell


def main(argv=None):
    cfg = load_config(argv, description=__doc__, default_config=DEFAULT_CONFIG)
    train(cfg)


if __name__ == "__main__":
    sys.exit(main())
