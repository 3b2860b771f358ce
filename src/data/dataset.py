"""The txt-driven training dataset: samples -> decoded, aligned, flipped, normalised NCHW batches.

``FaceSource`` is the random-access source of a ``mindspore.dataset.GeneratorDataset``: it decodes (OpenCV),
aligns to the template when the sample has landmarks (else resizes to the input size) and flips, keyed by
(seed, epoch, index) so augmentation is reproducible whatever the worker scheduling. The C++ pipeline then
normalises (x - 127.5) / 128 and transposes to CHW; ``ShardedStreamSampler`` shards it across ranks.
An image that fails to decode is logged, counted and replaced by the next readable sample; when the failures
exceed ``max_bad_fraction`` of the images read, the run stops with an error.
"""
import logging
import threading

import mindspore as ms
import mindspore.dataset as ds
import mindspore.dataset.transforms as T
import mindspore.dataset.vision as V
import numpy as np

from src.data.alignment import align_face
from src.data.preprocess import MEAN, SCALE, ImageDecodeError, load_rgb, resize_to
from src.data.sampler import ShardedStreamSampler

LOG = logging.getLogger(__name__)


class TooManyBadImages(RuntimeError):
    """More images failed to decode than the configured fraction allows."""


def prepare_image(image, landmarks, image_size):
    """Align with the landmarks when there are any, else resize to ``image_size``."""
    if landmarks is not None:
        return align_face(image, landmarks, image_size)
    return resize_to(image, image_size)


class FaceSource:
    """Random-access source; a key is ``epoch * len(samples) + index`` (see ``ShardedStreamSampler``)."""

    def __init__(self, samples, image_size, seed=0, random_flip=True, max_bad_fraction=0.001):
        self.samples = samples
        self.image_size = tuple(image_size)
        self.seed, self.random_flip = seed, random_flip
        self.max_bad_fraction = max_bad_fraction
        self.bad_paths = []
        self.reads = 0
        self._lock = threading.Lock()

    def __len__(self):
        return len(self.samples)

    def _flip(self, epoch, index):
        return self.random_flip and bool(np.random.default_rng([self.seed, epoch, index]).integers(2))

    def _record_bad(self, path, err):
        with self._lock:
            self.bad_paths.append(path)
            bad, reads = len(self.bad_paths), self.reads
        LOG.warning("skipped unreadable image %s (%s); %d skipped so far", path, err, bad)
        if bad > max(1, self.max_bad_fraction * reads):
            raise TooManyBadImages(f"{bad} of {reads} images could not be read (limit: "
                                   f"max_bad_fraction={self.max_bad_fraction}); last: {path}")

    def __getitem__(self, key):
        epoch, index = divmod(int(key), len(self.samples))
        for offset in range(len(self.samples)):
            sample = self.samples[(index + offset) % len(self.samples)]
            with self._lock:
                self.reads += 1
            try:
                image = prepare_image(load_rgb(sample.path), sample.landmarks, self.image_size)
                break
            except ImageDecodeError as err:
                self._record_bad(sample.path, err)
        else:
            raise TooManyBadImages("no image of the training list could be read")
        if self._flip(epoch, index):
            image = image[:, ::-1]
        return np.ascontiguousarray(image), np.int32(sample.label)


def create_train_dataset(samples, image_size, batch_size, seed=0, random_flip=True, num_workers=2,
                         num_shards=1, shard_id=0, start_step=0, total_steps=None, max_bad_fraction=0.001):
    """Build the batched training dataset and return (dataset, sampler, source)."""
    sampler = ShardedStreamSampler(len(samples), batch_size, num_shards, shard_id, seed=seed,
                                   start_step=start_step, total_steps=total_steps)
    source = FaceSource(samples, image_size, seed=seed, random_flip=random_flip,
                        max_bad_fraction=max_bad_fraction)
    dataset = ds.GeneratorDataset(source, column_names=["image", "label"], sampler=sampler,
                                  num_parallel_workers=num_workers, python_multiprocessing=False)
    normalize = [V.Normalize(mean=[MEAN] * 3, std=[1.0 / SCALE] * 3), V.HWC2CHW(), T.TypeCast(ms.float32)]
    dataset = dataset.map(operations=normalize, input_columns="image", num_parallel_workers=num_workers)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset, sampler, source
