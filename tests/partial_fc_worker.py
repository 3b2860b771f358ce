"""One worker of the Partial FC tests (started by tests/test_partial_fc.py under msrun, 2 CPU workers).

``equivalence MARGIN[:s=16,m=0.3]/MARGIN... OUT``: for each margin (with optional parameters), a tiny network with
the replicated head and the same network with the centres sharded over the workers (sample_rate 1.0) start from the
same weights; for several SGD steps the loss and every gradient after the data-parallel reduction are compared (the
sharded centres' gradient rows against the replicated one's), then both take the step. ``sampled OUT``: sample_rate
0.1 on 200 classes, the loss of each step. Writes OUT/rank<r>.json."""

import json
import os
import sys

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn
from mindspore.common.initializer import XavierUniform
from mindspore.communication import get_group_size, get_rank, init

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src.heads import MARGINS, build_head
from src.heads.partial_fc import PartialFCHead, sharded_parameters
from src.train.grad_reduce import GradReducer
from src.train.optimizer import build_optimizer
from src.train.train_network import FaceTrainNetwork
from src.train.train_step import TrainStep

INPUT, EMBEDDING, BATCH, STEPS = 12, 8, 4, 4


class TinyBackbone(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(INPUT, 16, weight_init=XavierUniform(), bias_init="zeros", activation="tanh")
        self.fc2 = nn.Dense(16, EMBEDDING, weight_init=XavierUniform(), bias_init="zeros")

    def construct(self, x):
        return self.fc2(self.fc1(x))


class Gradients(nn.Cell):
    """(loss, reduced gradients) of ``network``, as TrainStep computes them."""

    def __init__(self, network, weights, workers):
        super().__init__()
        self.grad_fn = ms.value_and_grad(network, None, weights, has_aux=True)
        self.reducer = GradReducer(weights, workers, sharded_parameters(network))

    def construct(self, image, label):
        (loss, _), grads = self.grad_fn(image, label)
        return loss, self.reducer(grads)


def batches(rank, workers, classes, seed=0):
    """This worker's part of a fixed global batch per step."""
    rng = np.random.default_rng(seed)
    for _ in range(STEPS if classes < 100 else 15):
        images = rng.normal(size=(BATCH * workers, INPUT)).astype(np.float32)
        labels = rng.integers(0, classes, BATCH * workers).astype(np.int32)
        yield Tensor(images[rank * BATCH : (rank + 1) * BATCH]), Tensor(labels[rank * BATCH : (rank + 1) * BATCH])


def train_step(network):
    optimizer = build_optimizer(network.trainable_params(), np.full(20, 0.1, np.float32), 0.9, 5e-4)
    step = TrainStep(network, optimizer)
    step.set_train(True)
    return step


def parse_margin(text):
    """'arcface:s=16,m=0.3' -> ('arcface', {'s': 16.0, 'm': 0.3})."""
    name, _, rest = text.partition(":")
    return name, {key: float(value) for key, value in (item.split("=") for item in rest.split(",") if item)}


def equivalence(margin, params, rank, workers):
    classes = 11
    ms.set_seed(5)
    replicated = FaceTrainNetwork(
        TinyBackbone(), build_head(margin, embedding_size=EMBEDDING, num_classes=classes, **params)
    )
    replicated.head.margin.batch_statistics(workers)
    sharded_head = PartialFCHead(MARGINS.get(margin)(classes, **params), EMBEDDING, classes, workers, rank, BATCH)
    sharded = FaceTrainNetwork(TinyBackbone(), sharded_head)
    start, stop = sharded_head.start, sharded_head.start + sharded_head.count
    for param in sharded.get_parameters():  # the same starting point
        source = {p.name: p for p in replicated.get_parameters()}[param.name].asnumpy()
        param.set_data(Tensor(source[start:stop] if param.name == "head.centres.weight" else source))
    probes = [Gradients(net, net.trainable_params(), workers) for net in (replicated, sharded)]
    steps = [train_step(net) for net in (replicated, sharded)]
    names = [p.name for p in sharded.trainable_params()]
    report = []
    for image, label in batches(rank, workers, classes):
        (loss_r, grads_r), (loss_s, grads_s) = [probe(image, label) for probe in probes]
        by_name = dict(zip([p.name for p in replicated.trainable_params()], grads_r))
        differences = {}
        for name, grad in zip(names, grads_s):
            expected = by_name[name].asnumpy()
            if name == "head.centres.weight":
                expected = expected[start:stop]
            differences[name] = float(np.abs(grad.asnumpy() - expected).max())
        report.append(
            {
                "loss_replicated": float(loss_r),
                "loss_sharded": float(loss_s),
                "gradients": differences,
                "largest_gradient": max(float(np.abs(g.asnumpy()).max()) for g in grads_r),
            }
        )
        for step in steps:
            step(image, label)
    return report


def sampled(rank, workers):
    classes = 200
    ms.set_seed(5)
    head = PartialFCHead(
        MARGINS.get("cosface")(classes, s=16.0), EMBEDDING, classes, workers, rank, BATCH, sample_rate=0.1, seed=3
    )
    step = train_step(FaceTrainNetwork(TinyBackbone(), head))
    data = list(batches(rank, workers, classes))
    losses = []
    for _ in range(3):
        for image, label in data[:2]:
            losses.append(float(step(image, label)[0]))
    return {
        "losses": losses,
        "sampled": head.sampled,
        "local_classes": head.count,
        "sample_step": int(head.sample_step.asnumpy()),
    }


def start_data_parallel():
    """CPU, GRAPH mode and data parallelism over the msrun workers; returns (rank, worker count)."""
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    init()
    rank, workers = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=workers)
    return rank, workers


def main():
    rank, workers = start_data_parallel()
    mode, out = sys.argv[1], sys.argv[-1]
    if mode == "equivalence":
        result = {text: equivalence(*parse_margin(text), rank, workers) for text in sys.argv[2].split("/")}
    else:
        result = sampled(rank, workers)
    with open(os.path.join(out, f"rank{rank}.json"), "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
