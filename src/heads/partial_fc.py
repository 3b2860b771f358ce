"""Partial FC: the class centres sharded over the data-parallel workers, with explicit collectives.

(An, Zhu et al., "Partial FC: Training 10 Million Identities on a Single Machine", 2021; "Killing Two Birds with
One Stone: Efficient and Robust Training of Face Recognition CNNs by Partial FC", CVPR 2022.)

Worker r of N holds the centres of classes [start_r, start_r + C_r), C_r = C/N (the first C mod N workers one
more), and their optimizer state: these Parameters are left out of the data-parallel gradient average
(``src/train/grad_reduce.py``). Each step:

1. the embeddings and labels of the global batch (N x B) are all-gathered (``GatherBatch``: its backward sums
   every worker's gradient of this worker's rows);
2. with ``sample_rate`` r < 1 the worker keeps the centres of its classes present in the global batch plus
   random others, k = min(C_r, max(ceil(r C_r), N B)) in all (a fixed k, so shapes stay static; PartialFC v2),
   chosen by a hash of (seed, step, class id): reproducible from the seed and the step, and saved with the step
   in checkpoints (``head.sample_step``);
3. cos(theta) of the global batch against the kept centres, the margin on this slice (the label as a one-hot row
   over the slice, zero when the class lives elsewhere), and the loss assembled across workers
   (``objectives``: the softmax normaliser from all-reduced max and sum); the loss and accuracy are the same on
   every worker.

Checkpoints hold the full matrices (gathered at save, ``gather_sharded``) and each worker takes its rows on
load (``shard_entries``), so a run resumes on any number of workers, sharded or not; eval and export read only
the backbone.
"""

import math

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from src.heads.centres import ShardedClassCentres, feature_norm, shard_range
from src.heads.collectives import GatherBatch, GatherLabels
from src.heads.margin import one_hot_rows
from src.heads.objectives import Accuracy, build_objective
from src.model_utils.config import ConfigError

HALF = 65536  # 2^16: every value the hash holds is below it, every product below 2^31
LANES = (0x6D2B, 0x4F1B)  # odd multipliers below 2^15, one per 16-bit lane


def mix16(x, multiplier):
    """A 16-bit integer hash (xor-shift-multiply) of int32 ``x`` in [0, 2^16). Every intermediate value stays
    below 2^31, so int32 arithmetic holds it (a 910A runs int64 ``//``, ``%`` and ``bitwise_xor`` on its AI CPU)."""
    x = ops.bitwise_xor(x, x // 256)
    x = (x * multiplier) % HALF
    x = ops.bitwise_xor(x, x // 128)
    x = (x * multiplier) % HALF
    return ops.bitwise_xor(x, x // 256)


def absorb(state, value, multiplier):
    """The lane's ``state`` in [0, 2^16) after taking in int32 ``value`` in [0, 2^31), 16 bits at a time."""
    state = mix16((state + value % HALF) % HALF, multiplier)
    return mix16((state + value // HALF) % HALF, multiplier)


def uniform_hash(seed, step, class_ids):
    """A number in [0, 1] per int32 class id, a function of (seed, step, id) only: two 16-bit lanes with
    different multipliers take in the seed, the step and the id; the first gives the high 16 bits, the second
    the low ones (float32 keeps 24 of the 32)."""
    step = step.astype(ms.int32)
    seed = Tensor(seed % 2**31, ms.int32)
    lanes = []
    for lane, multiplier in enumerate(LANES):
        key = absorb(absorb(Tensor(lane, ms.int32), seed, multiplier), step, multiplier)
        lanes.append(absorb(key, class_ids, multiplier).astype(ms.float32))
    return (lanes[0] + lanes[1] / HALF) / HALF


def kept_centres(count, sample_rate, global_batch):
    """Centres a worker with ``count`` of them uses per step: k = min(C_r, max(ceil(r C_r), global batch))."""
    return min(count, max(math.ceil(sample_rate * count), global_batch))


class PartialFCHead(nn.Cell):
    """``(embedding, label) -> (loss, accuracy)`` of this worker's batch, with this worker's centres (module
    docstring). The gradients of what every worker holds (the backbone through the embeddings, a margin's bias)
    are scaled by the worker count, which the data-parallel mean (``gradients_mean``, as train.py sets it)
    divides away."""

    def __init__(
        self,
        margin,
        embedding_size,
        num_classes,
        workers,
        rank,
        batch_size,
        sample_rate=1.0,
        seed=0,
        label_smoothing=0.0,
    ):
        super().__init__()
        if not 0.0 < sample_rate <= 1.0:
            raise ConfigError(f"config key 'head.sample_rate': {sample_rate} is not in (0, 1]")
        self.num_classes, self.workers, self.rank = num_classes, workers, rank
        self.centres = ShardedClassCentres(embedding_size, num_classes, workers, rank, seed)
        self.start, self.count = self.centres.start, self.centres.count
        self.global_batch = batch_size * workers
        self.sampled = kept_centres(self.count, sample_rate, self.global_batch)
        self.seed = seed
        if self.sampled < self.count:
            self.sample_step = Parameter(Tensor(0, ms.int64), name="sample_step", requires_grad=False)
            self.class_ids = Tensor(np.arange(self.start, self.start + self.count), ms.int32)
            self.positions = Tensor(np.arange(self.sampled), ms.int32)
        self.gather_embeddings = GatherBatch(workers, rank, batch_size, float(workers))
        self.gather_labels = GatherLabels(workers)
        self.margin = margin
        margin.share_across(workers)
        classes_used = sum(
            kept_centres(shard_range(num_classes, workers, r)[1], sample_rate, self.global_batch)
            for r in range(workers)
        )
        self.objective = build_objective(margin, workers, label_smoothing, classes_used)
        self.loss_weight = margin.loss_weight
        self.accuracy = Accuracy(workers)

    def sample(self, local, inside):
        """Indices of the kept centres (this worker's classes present in the global batch, scored 2, then the
        others with the highest hash in [0, 1]) and the labels renumbered into them."""
        step = self.sample_step.value()
        if self.training:
            ops.assign_add(self.sample_step, ops.ones((), ms.int64))
        score = uniform_hash(self.seed, step, self.class_ids)
        slot = ops.where(inside, local, self.count)
        hits = ops.zeros((self.count + 1,), ms.float32)
        hits = ops.tensor_scatter_add(hits, slot.expand_dims(1), ops.ones(slot.shape, ms.float32))
        score = ops.where(hits[: self.count] > 0, 2.0, score)
        _, index = ops.topk(score, self.sampled)
        position = ops.scatter_nd(index.expand_dims(1), self.positions, (self.count,))
        return index, ops.gather(position, ops.clamp(local, 0, self.count - 1), 0)

    def construct(self, x, label):
        x = self.gather_embeddings(x)
        local = self.gather_labels(label) - self.start
        inside = ops.logical_and(local >= 0, local < self.count)
        index, columns = None, self.count
        if self.sampled < self.count:
            index, local = self.sample(local, inside)
            columns = self.sampled
        cos = self.centres(x, index)
        one_hot = one_hot_rows(ops.where(inside, local, 0), columns) * inside.astype(ms.float32).expand_dims(1)
        norms = feature_norm(x) if self.margin.uses_norms else None
        logits = self.margin(cos, one_hot, norms)
        return self.loss_weight * self.objective(logits, one_hot), self.accuracy(cos, one_hot)


def sharded_heads(cell):
    return [c for _, c in cell.cells_and_names() if isinstance(c, PartialFCHead)]


def sharded_parameters(cell):
    """{Parameter name: (start, stop, num_classes)} of ``cell``'s sharded centres and their optimizer state
    (``moments.head.centres.weight``, ...: every Parameter named ``<prefix>.<centre name>`` with the centres' shape)."""
    found = {}
    for head in sharded_heads(cell):
        weight = head.centres.weight
        for param in cell.get_parameters():
            if (param.name == weight.name or param.name.endswith("." + weight.name)) and tuple(param.shape) == tuple(
                weight.shape
            ):
                found[param.name] = (head.start, head.start + head.count, head.num_classes)
    return found


class GatherRows(nn.Cell):
    """Every worker's (rows_max, D) block, in rank order: (N rows_max, D)."""

    def __init__(self):
        super().__init__()
        self.gather = ops.AllGather()

    def construct(self, x):
        return self.gather(x)


def gather_sharded(cell):
    """{name: full C x D array} of ``cell``'s sharded Parameters (every worker must call it: a collective);
    {} when nothing is sharded."""
    sharded = sharded_parameters(cell)
    if not sharded:
        return {}
    params = {p.name: p for p in cell.get_parameters()}
    workers = sharded_heads(cell)[0].workers
    gather = GatherRows() if workers > 1 else None
    full = {}
    for name, (start, stop, total) in sorted(sharded.items()):
        value = params[name].asnumpy()
        if gather is None:
            full[name] = value
            continue
        ranges = [shard_range(total, workers, r) for r in range(workers)]
        most = max(count for _, count in ranges)
        padded = np.zeros((most,) + value.shape[1:], value.dtype)
        padded[: stop - start] = value
        blocks = gather(Tensor(padded)).asnumpy()
        full[name] = np.concatenate([blocks[r * most : r * most + count] for r, (_, count) in enumerate(ranges)])
    return full


def shard_entries(cell, entries):
    """``entries`` (a checkpoint) with the full matrices of ``cell``'s sharded Parameters cut to this worker's
    rows; entries already of the shard's shape (a checkpoint of the same sharding) are kept."""
    sharded = sharded_parameters(cell)
    out = dict(entries)
    for name, (start, stop, total) in sharded.items():
        value = entries.get(name)
        if value is not None and not isinstance(value, str) and value.shape[0] == total and stop - start != total:
            out[name] = Parameter(Tensor(value.asnumpy()[start:stop]), name=name)
    return out
