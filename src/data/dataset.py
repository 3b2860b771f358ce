"""The txt-driven training dataset: samples -> decoded, aligned, flipped, normalised NCHW batches.

``FaceSource`` is the random-access source of a ``mindspore.dataset.GeneratorDataset``: it decodes (OpenCV; an
image file or a RecordIO record), aligns to the template when the sample has landmarks (else resizes to the input
size), optionally jitters the crop (``align_jitter``: align into a window ``align_jitter`` pixels larger on every
side and crop a random image_size window) and flips, keyed by (seed, epoch, index) so augmentation is
reproducible whatever the worker scheduling, and turns the image into the network input with ``to_input``
(``src/data/image_io.py``, the one definition evaluation and export use too) in the same call: a separate
``map`` operation would cost a second Python call per image.
``ShardedStreamSampler`` shards it across ranks.

Workers: one is the fastest here. With ``num_parallel_workers`` > 1, MindSpore 2.10's ``GeneratorDataset`` hands
the keys to Python worker threads and, whenever a worker's result is not ready yet, sleeps 0.1 s before it looks
again (``_SamplerFn.process`` in ``mindspore/dataset/engine/datasets_user_defined.py``); the Python work is
serialised by the GIL anyway. Two worker threads, and worker processes (``python_multiprocessing``), are several
times slower per batch than one worker (``benchmarks/bench_data.py``; docs/performance.md, "Input pipeline").
An image that fails to decode (or to align) is logged with its path, counted and replaced by the next readable
sample; when more distinct images than ``max_bad_fraction`` of the list (at least one is always tolerated) have
failed, the run stops with an error. Each rank counts the images it reads.
"""

import logging
import os
import threading

import cv2
import mindspore.dataset as ds
import numpy as np

from src.data.alignment import AlignmentError, align_face
from src.data.image_io import ImageDecodeError, resize_to, to_input
from src.data.images import load_sample_image
from src.data.sampler import ShardedStreamSampler
from src.data.samples import sample_name

LOG = logging.getLogger("facerec.data")


class TooManyBadImages(RuntimeError):
    """More images failed to decode than the configured fraction allows."""


class ImagesUnreachable(RuntimeError):
    """The folder of a training image is gone mid-run (a network disk unmounted, files moved)."""


def prepare_image(image, landmarks, image_size, pad=0):
    """Align with the landmarks when there are any, else resize to ``image_size``; ``pad`` black pixels are
    added on every side (the window the training jitter crops from)."""
    if landmarks is not None:
        return align_face(image, landmarks, image_size, pad)
    image = resize_to(image, image_size)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    return image


class FaceSource:
    """Random-access source; a key is ``epoch * len(samples) + index`` (see ``ShardedStreamSampler``).

    ``bad_paths`` lists the distinct unreadable images in the order met, ``skips`` counts every skip.
    """

    def __init__(self, samples, image_size, seed=0, random_flip=True, max_bad_fraction=0.001, align_jitter=0):
        self.samples = samples
        self.image_size = tuple(image_size)
        self.seed, self.random_flip, self.align_jitter = seed, random_flip, align_jitter
        self.max_bad_fraction = max_bad_fraction
        self.bad_paths = []
        self.skips = 0
        self.error = None  # the error that stopped the source (MindSpore re-raises it wrapped in a RuntimeError)
        self._lock = threading.Lock()

    def __len__(self):
        return len(self.samples)

    def augmentation(self, epoch, index):
        """(flip, top, left) of sample ``index`` in ``epoch``: drawn from a generator seeded by (seed, epoch, index)."""
        rng = np.random.default_rng([self.seed, epoch, index])
        flip = self.random_flip and bool(rng.integers(2))
        top, left = rng.integers(0, 2 * self.align_jitter + 1, size=2) if self.align_jitter else (0, 0)
        return flip, int(top), int(left)

    def _fail(self, err):
        self.error = err
        raise err

    def _record_bad(self, sample, err):
        name = sample_name(sample)
        folder = os.path.dirname(sample.path)
        if sample.offset is None and not os.path.isdir(folder):
            self._fail(
                ImagesUnreachable(
                    f"the folder {folder} of training image {name} is gone (a network disk "
                    f"unmounted, files moved?); the checkpoints are intact: resume with "
                    f"--resume once it is back"
                )
            )
        with self._lock:
            self.skips += 1
            if name not in self.bad_paths:
                self.bad_paths.append(name)
            bad = len(self.bad_paths)
        LOG.warning("skipped unusable image %s (%s); %d distinct unreadable images so far", name, err, bad)
        if bad > max(1, self.max_bad_fraction * len(self.samples)):
            self._fail(
                TooManyBadImages(
                    f"{bad} of {len(self.samples)} images could not be read (limit: "
                    f"max_bad_fraction={self.max_bad_fraction}); last: {name}"
                )
            )

    def image(self, key):
        """(the augmented HxWx3 uint8 RGB image, label) of ``key``."""
        epoch, index = divmod(int(key), len(self.samples))
        for offset in range(len(self.samples)):
            sample = self.samples[(index + offset) % len(self.samples)]
            try:
                image = prepare_image(load_sample_image(sample), sample.landmarks, self.image_size, self.align_jitter)
                break
            except (ImageDecodeError, AlignmentError) as err:
                self._record_bad(sample, err)
        else:
            self._fail(TooManyBadImages("no image of the training list could be read"))
        flip, top, left = self.augmentation(epoch, index)
        height, width = self.image_size
        image = image[top : top + height, left : left + width]
        if flip:
            image = image[:, ::-1]
        return np.ascontiguousarray(image), np.int32(sample.label)

    def __getitem__(self, key):
        """The pipeline's row: (``to_input`` of ``image(key)``, label)."""
        image, label = self.image(key)
        return to_input(image), label


def batches(dataset, source):
    """The batches of ``dataset`` (one epoch of its sampler); an error that stopped ``source`` is raised as itself,
    not inside MindSpore's RuntimeError with a pipeline stack."""
    try:
        yield from dataset.create_tuple_iterator(num_epochs=1)
    except RuntimeError:
        if source.error is not None:
            raise source.error from None
        raise


def create_train_dataset(
    samples,
    image_size,
    batch_size,
    seed=0,
    random_flip=True,
    num_workers=1,
    num_shards=1,
    shard_id=0,
    start_step=0,
    total_steps=None,
    max_bad_fraction=0.001,
    align_jitter=0,
):
    """Build the batched training dataset and return (dataset, sampler, source)."""
    sampler = ShardedStreamSampler(
        len(samples), batch_size, num_shards, shard_id, seed=seed, start_step=start_step, total_steps=total_steps
    )
    source = FaceSource(
        samples,
        image_size,
        seed=seed,
        random_flip=random_flip,
        max_bad_fraction=max_bad_fraction,
        align_jitter=align_jitter,
    )
    dataset = ds.GeneratorDataset(
        source,
        column_names=["image", "label"],
        sampler=sampler,
        num_parallel_workers=num_workers,
        python_multiprocessing=False,
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset, sampler, source
