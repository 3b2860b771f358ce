"""One worker of tests/test_overflow_ranks.py (2 CPU workers under msrun): a tiny network trained by TrainStep
with a dynamic loss scaler, where ``amp.all_finite`` stands for Ascend's float status register, which is local to
each device: rank 1 reports an overflow whenever its first (averaged) gradient sums to more than 0, rank 0 never.
Writes OUT/rank<r>.json: per step the finite flag and the loss scale, and the final weights."""

import json
import os
import sys

import mindspore as ms
import numpy as np
from mindspore import amp, ops
from partial_fc_worker import TinyBackbone, batches, start_data_parallel

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src.heads import build_head
from src.train.optimizer import build_optimizer
from src.train.train_network import FaceTrainNetwork
from src.train.train_step import TrainStep

CLASSES = 5


def local_status(all_finite, rank):
    """``all_finite`` that also reports an overflow on rank 1 when the first gradient sums to more than 0 (the same
    graph on every rank, so that their collectives run in the same order)."""
    weight = ms.Tensor(float(rank == 1), ms.float32)

    def status(grads):
        return ops.logical_and(all_finite(grads), grads[0].sum() * weight <= 0)

    return status


def main():
    rank, workers = start_data_parallel()
    amp.all_finite = local_status(amp.all_finite, rank)
    ms.set_seed(5)
    network = FaceTrainNetwork(TinyBackbone(), build_head("cosface", embedding_size=8, num_classes=CLASSES, s=16.0))
    optimizer = build_optimizer(network.trainable_params(), np.full(20, 0.1, np.float32), 0.9, 5e-4)
    step = TrainStep(network, optimizer, loss_scaler=amp.DynamicLossScaler(1024.0, 2, 1000))
    step.set_train(True)
    report = {"finite": [], "scale": []}
    for image, label in batches(rank, workers, CLASSES):
        _, _, finite = step(image, label)
        report["finite"].append(bool(finite))
        report["scale"].append(float(step.loss_scale_value.asnumpy()))
    report["weights"] = {p.name: p.asnumpy().tolist() for p in network.trainable_params()}
    with open(os.path.join(sys.argv[-1], f"rank{rank}.json"), "w", encoding="utf-8") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
