"""Distributed sampler: every rank reads a disjoint shard of one shared permutation per epoch.

The permutation of epoch e depends only on (seed, e). It is padded by wrapping around so that all ranks get the
same count, rank r takes positions r, r + R, r + 2R, ..., and each rank keeps ``steps_per_epoch * batch_size``
of its share, so every epoch has the same whole number of steps on every rank. The sampler yields one stream
of ``epoch * num_samples + index`` keys over all epochs, starting at any global step: the position is fully
determined by the step, which is what makes a resumed run read exactly the data an uninterrupted one would.
"""

import math

import numpy as np


def epoch_permutation(num_samples, seed, epoch, shuffle=True):
    if not shuffle:
        return np.arange(num_samples)
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def steps_per_epoch(num_samples, batch_size, num_shards=1):
    """Whole batches each rank reads per epoch (its share is ceil(num_samples / num_shards) samples)."""
    share = math.ceil(num_samples / num_shards)
    steps = share // batch_size
    if steps == 0:
        raise ValueError(
            f"{num_samples} samples over {num_shards} shard(s) give fewer than one batch of {batch_size} per shard: "
            f"the largest batch size that fits is {share} (batch_size: {share}, or add images)"
        )
    return steps


def epoch_of_step(step, steps_per_epoch):
    """The 1-based epoch of the 1-based global ``step``."""
    return (step - 1) // steps_per_epoch + 1


class ShardedStreamSampler:
    """Iterable of sample keys for ``mindspore.dataset.GeneratorDataset(sampler=...)``."""

    def __init__(
        self, num_samples, batch_size, num_shards=1, shard_id=0, seed=0, shuffle=True, start_step=0, total_steps=None
    ):
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id {shard_id} is outside 0..{num_shards - 1}")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.num_shards, self.shard_id = num_shards, shard_id
        self.seed, self.shuffle = seed, shuffle
        self.per_shard = math.ceil(num_samples / num_shards)
        self.steps_per_epoch = steps_per_epoch(num_samples, batch_size, num_shards)
        self.start_step = start_step
        self.total_steps = total_steps if total_steps is not None else self.steps_per_epoch
        if start_step > self.total_steps:
            raise ValueError(f"start step {start_step} is beyond the last step {self.total_steps}")

    def shard_indices(self, epoch):
        """The sample indices rank ``shard_id`` reads in ``epoch``, in order."""
        perm = epoch_permutation(self.num_samples, self.seed, epoch, self.shuffle)
        padded = np.resize(perm, self.per_shard * self.num_shards)
        return padded[self.shard_id :: self.num_shards][: self.steps_per_epoch * self.batch_size]

    def __iter__(self):
        step = self.start_step
        while step < self.total_steps:
            epoch, step_in_epoch = divmod(step, self.steps_per_epoch)
            indices = self.shard_indices(epoch)
            stop = min(self.steps_per_epoch, step_in_epoch + self.total_steps - step)
            for index in indices[step_in_epoch * self.batch_size : stop * self.batch_size]:
                yield int(epoch * self.num_samples + index)
            step += stop - step_in_epoch

    def __len__(self):
        return (self.total_steps - self.start_step) * self.batch_size
