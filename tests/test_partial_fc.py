"""Partial FC: the sharded head on one worker equals the replicated head; sampling keeps the batch's classes and
is a function of (seed, step); the centres start the same on any number of workers; and, under msrun with 2 CPU
workers (slow), loss and every gradient equal the replicated head's, sample_rate 0.1 trains, and a run resumes
from 2 workers on 1 and from 1 on 2 with the same losses."""

import json
import os
import shutil
import socket
import subprocess

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor
from test_distributed_cpu import start_single, start_two_workers
from tiny_training import PYTHON, ROOT, digits_subset, load_params, write_config

from src.heads import MARGINS, build_head
from src.heads.centres import init_centres, shard_range
from src.heads.partial_fc import HALF, LANES, PartialFCHead, shard_entries, sharded_parameters, uniform_hash
from src.train.metrics_log import read_metrics
from src.train.train_network import FaceTrainNetwork

EMB, CLASSES, BATCH = 8, 11, 6
WORKER = os.path.join(ROOT, "tests", "partial_fc_worker.py")


def data(seed=0, classes=CLASSES):
    rng = np.random.default_rng(seed)
    return (
        Tensor(rng.normal(size=(BATCH, EMB)).astype(np.float32)),
        Tensor(rng.integers(0, classes, BATCH).astype(np.int32)),
    )


def loss_and_gradients(head, x, y):
    def loss(features):
        return head(features, y)[0]

    value, (gx, gw) = ms.value_and_grad(loss, 0, head.trainable_params())(x)
    return float(value), gx.asnumpy(), [g.asnumpy() for g in gw]


@pytest.mark.parametrize("margin", ["arcface", "sphereface2", "asoftmax"])
def test_sharded_head_on_one_worker_equals_the_replicated_head(margin):
    replicated = build_head(margin, embedding_size=EMB, num_classes=CLASSES)
    sharded = PartialFCHead(MARGINS.get(margin)(CLASSES), EMB, CLASSES, workers=1, rank=0, batch_size=BATCH)
    sharded.centres.weight.set_data(replicated.centres.weight.value())
    x, y = data()
    for head in (replicated, sharded):
        head.set_train(False)
    loss_r, gx_r, gw_r = loss_and_gradients(replicated, x, y)
    loss_s, gx_s, gw_s = loss_and_gradients(sharded, x, y)
    assert loss_s == pytest.approx(loss_r, rel=1e-6)
    np.testing.assert_allclose(gx_s, gx_r, atol=1e-6)
    for a, b in zip(gw_s, gw_r):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_sampling_keeps_the_batch_classes_and_depends_on_seed_and_step_only():
    classes = 400
    x, y = data(classes=classes)

    def sampled_rows(seed, step):
        head = PartialFCHead(
            MARGINS.get("cosface")(classes),
            EMB,
            classes,
            workers=1,
            rank=0,
            batch_size=BATCH,
            sample_rate=0.1,
            seed=seed,
        )
        head.sample_step.set_data(Tensor(step, ms.int64))
        local = y.astype(ms.int32)
        index, renumbered = head.sample(local, local >= 0)
        return head, index.asnumpy(), renumbered.asnumpy()

    head, index, renumbered = sampled_rows(seed=1, step=7)
    assert head.sampled == 40 and len(set(index)) == 40
    np.testing.assert_array_equal(index[renumbered], y.asnumpy())  # every label maps to its own centre
    np.testing.assert_array_equal(sampled_rows(1, 7)[1], index)
    assert set(sampled_rows(1, 8)[1]) != set(index) and set(sampled_rows(2, 7)[1]) != set(index)
    # the loss only sees the kept centres: the same value as the replicated head restricted to them
    head.set_train(False)
    loss = float(head(x, y)[0])
    replicated = build_head("cosface", embedding_size=EMB, num_classes=40)
    replicated.centres.weight.set_data(Tensor(head.centres.weight.asnumpy()[index]))
    replicated.set_train(False)
    assert loss == pytest.approx(float(replicated(x, Tensor(renumbered))[0]), rel=1e-5)


def numpy_hash(seed, step, class_ids):
    """uniform_hash in NumPy int64, checking that no intermediate value reaches 2^31 (int32 would hold it)."""

    def safe(x):
        assert np.all((x >= 0) & (x < 2**31))
        return x

    def mix16(x, m):
        x = safe(x ^ (x // 256))
        x = safe(safe(x * m) % HALF)
        x = safe(x ^ (x // 128))
        x = safe(safe(x * m) % HALF)
        return safe(x ^ (x // 256))

    def absorb(state, value, m):
        state = mix16(safe(state + value % HALF) % HALF, m)
        return mix16(safe(state + value // HALF) % HALF, m)

    lanes = []
    for lane, m in enumerate(LANES):
        key = absorb(absorb(np.int64(lane), np.int64(seed), m), np.int64(step), m)
        lanes.append(absorb(key, class_ids.astype(np.int64), m).astype(np.float32))
    return (lanes[0] + lanes[1] / np.float32(HALF)) / np.float32(HALF)


@pytest.mark.parametrize("seed, step", [(0, 0), (3, 7), (12345, 2**31 - 1), (2**31 - 1, 123456789)])
def test_sampling_hash_in_int32_equals_numpy(seed, step):
    class_ids = np.concatenate([np.arange(0, 3000), np.arange(2**31 - 3000, 2**31)]).astype(np.int32)
    result = uniform_hash(seed, Tensor(step, ms.int64), Tensor(class_ids))
    expected = numpy_hash(seed, step, class_ids)
    np.testing.assert_array_equal(result.asnumpy(), expected)
    assert (expected >= 0).all() and (expected <= 1).all()
    assert len(np.unique(expected)) > 0.99 * len(expected)  # a near-uniform spread, few ties
    assert abs(float(expected.mean()) - 0.5) < 0.02


def test_centres_start_the_same_on_any_number_of_workers():
    full = init_centres(10000, 4, 0, 10000, seed=3)
    for workers in (2, 3, 7):
        ranges = [shard_range(10000, workers, r) for r in range(workers)]
        assert sum(count for _, count in ranges) == 10000 and ranges[-1][0] + ranges[-1][1] == 10000
        parts = [init_centres(10000, 4, start, count, seed=3) for start, count in ranges]
        np.testing.assert_array_equal(np.concatenate(parts), full)
    bound = np.sqrt(6.0 / (10000 + 4))
    assert np.abs(full).max() <= bound and np.abs(full).max() > 0.99 * bound


def test_checkpoint_entries_are_cut_to_the_worker_rows():
    heads = [
        PartialFCHead(MARGINS.get("cosface")(CLASSES), EMB, CLASSES, workers=2, rank=r, batch_size=BATCH)
        for r in (0, 1)
    ]
    full = np.arange(CLASSES * EMB, dtype=np.float32).reshape(CLASSES, EMB)
    for rank, head in enumerate(heads):
        network = FaceTrainNetwork(ms.nn.Dense(3, EMB), head)
        assert sorted(sharded_parameters(network)) == ["head.centres.weight"]
        entries = shard_entries(network, {"head.centres.weight": ms.Parameter(Tensor(full), name="w"), "run.x": "y"})
        start, count = shard_range(CLASSES, 2, rank)
        np.testing.assert_array_equal(entries["head.centres.weight"].asnumpy(), full[start : start + count])
        assert entries["run.x"] == "y"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def msrun_worker(tmp_path, *args, worker=WORKER):
    out = str(tmp_path)
    command = [
        shutil.which("msrun") or os.path.join(os.path.dirname(PYTHON), "msrun"),
        "--worker_num=2",
        "--local_worker_num=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "--join=True",
        f"--log_dir={os.path.join(out, 'log')}",
        worker,
        *args,
        out,
    ]
    env = dict(os.environ, PATH=os.path.dirname(PYTHON) + os.pathsep + os.environ.get("PATH", ""))
    process = subprocess.run(command, check=False, cwd=out, env=env, capture_output=True, text=True, timeout=1500)
    results = [os.path.join(out, f"rank{r}.json") for r in (0, 1)]
    assert all(os.path.exists(p) for p in results), process.stdout[-3000:] + process.stderr[-3000:]
    return [json.loads(read(p)) for p in results]


@pytest.mark.slow
def test_two_workers_sharded_equal_replicated_and_sampled_training_falls(tmp_path):
    (tmp_path / "equal").mkdir()
    ranks = msrun_worker(
        tmp_path / "equal", "equivalence", "arcface:s=16/sphereface2:r=16/adaface:s=16/asoftmax:m=2/spherefacer"
    )
    for margin, steps in ranks[0].items():
        assert len(steps) == 4
        for rank0, rank1 in zip(steps, ranks[1][margin]):
            # the replicated loss is each worker's batch mean: their mean is the global batch's, the sharded loss
            mean = (rank0["loss_replicated"] + rank1["loss_replicated"]) / 2
            assert rank0["loss_sharded"] == rank1["loss_sharded"]
            assert rank0["loss_sharded"] == pytest.approx(mean, rel=1e-5, abs=1e-5), margin
            for rank in (rank0, rank1):
                assert max(rank["gradients"].values()) < 1e-5, (margin, rank["gradients"])
    (tmp_path / "sampled").mkdir()
    ranks = msrun_worker(tmp_path / "sampled", "sampled")
    assert ranks[0] == ranks[1]
    losses = np.array(ranks[0]["losses"]).reshape(3, 2)  # 3 passes over the same 2 batches
    assert np.isfinite(losses).all() and (losses[-1] < 0.5 * losses[0]).all(), losses
    assert (ranks[0]["sampled"], ranks[0]["local_classes"], ranks[0]["sample_step"]) == (10, 100, 6)


STEPS = 8
SHARDED = {
    "global_batch_size": 16,
    "num_threads": 1,
    "max_steps": STEPS,
    "save_interval": 4,
    "keep_checkpoints": 100,
    "head": "{type: cosface, s: 16, sharded: true}",
    "tensorboard": "false",
    "clip_grad_norm": 1.0,
}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def losses(output_dir):
    steps, values = read_metrics(os.path.join(output_dir, "metrics.csv"))["train/loss"]
    return dict(zip(steps, values))


def run(processes):
    for process, output_dir in processes:
        output = process.communicate(timeout=1500)[0]
        assert f"at step {STEPS} of {STEPS};" in read(os.path.join(output_dir, "log_rank0.txt")), output[-3000:]


@pytest.mark.slow
def test_sharded_centres_resume_from_2_workers_on_1_and_from_1_on_2(tmp_path):
    data_paths = digits_subset(str(tmp_path / "digits"))
    config = write_config(str(tmp_path / "tiny.yaml"), data_paths, str(tmp_path / "unused"), **SHARDED)
    two, one = str(tmp_path / "two"), str(tmp_path / "one")
    run([(start_two_workers(config, tmp_path, f"--output_dir={two}"), two)])
    run([(start_single(config, tmp_path, f"--output_dir={one}"), one)])
    saved = load_params(os.path.join(two, "checkpoints", "step_00000004.ckpt"))
    assert saved["head.centres.weight"].shape == saved["moments.head.centres.weight"].shape == (7, 16)

    two_to_one, one_to_two = str(tmp_path / "two_to_one"), str(tmp_path / "one_to_two")
    for source, target in ((two, two_to_one), (one, one_to_two)):
        os.makedirs(os.path.join(target, "checkpoints"))
        shutil.copy(os.path.join(source, "checkpoints", "step_00000004.ckpt"), os.path.join(target, "checkpoints"))
    run([(start_single(config, tmp_path, f"--output_dir={two_to_one}", "--resume"), two_to_one)])
    run([(start_two_workers(config, tmp_path, f"--output_dir={one_to_two}", "--resume"), one_to_two)])
    assert "saved on 2 worker(s), now 1" in read(os.path.join(two_to_one, "log_rank0.txt"))
    assert "saved on 1 worker(s), now 2" in read(os.path.join(one_to_two, "log_rank0.txt"))
    for original, resumed in ((two, two_to_one), (one, one_to_two)):
        expected, got = losses(original), losses(resumed)
        assert sorted(got) == list(range(5, STEPS + 1))  # the resumed run logs from step 5
        for step in range(5, STEPS + 1):
            assert got[step] == pytest.approx(expected[step], rel=1e-5), (original, step)
    # the uninterrupted 1- and 2-worker runs are the same run (global batch and seed fixed)
    assert all(losses(one)[s] == pytest.approx(losses(two)[s], rel=1e-4) for s in range(1, STEPS + 1))
