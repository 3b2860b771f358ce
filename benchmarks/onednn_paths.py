"""Which oneDNN implementation runs each primitive of a training (or inference) step, per ``ONEDNN_MAX_CPU_ISA``.

    python benchmarks/onednn_paths.py                                   # sphere20a, sphere10 w0.25, MobileFaceNet
    python benchmarks/onednn_paths.py --isas default AVX2 AVX512_CORE --backbones sphere20a --batch 16
    python benchmarks/onednn_paths.py --infer                           # forward only (inference)

For every (backbone, ISA) one fresh worker process runs ``--steps`` training steps of the project's network
(backbone + CosFace head + SGD, ``TrainStep``) with ``ONEDNN_VERBOSE=1`` in its environment (``default`` leaves
``ONEDNN_MAX_CPU_ISA`` unset: oneDNN's own choice for this CPU). The driver parses oneDNN's ``exec`` lines and
prints, per primitive kind and propagation (forward / backward_data / backward_weights), which implementations
ran, how often and for how long, the reference (``ref``) paths' shapes, and the step times. Steps after the first
show the steady state (the first also creates the primitives). PyTorch reads the same variable: ``--torch`` adds
the PyTorch twin's step time under each ISA (it has no verbose parsing here: its oneDNN is used for some ops only).
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

# name -> (project backbone, width, embedding size, input height x width)
NETWORKS = {
    "sphere20a": ("sphere20a", 1.0, 512, (112, 96)),
    "sphere10w025": ("sphere10", 0.25, 512, (56, 48)),
    "mobilefacenet": ("mobilefacenet", 1.0, 128, (112, 96)),
    "iresnet18": ("iresnet18", 1.0, 512, (112, 112)),
}
CPU_ISAS = ("default", "AVX2", "AVX512_CORE", "AVX512_CORE_AMX")
VERBOSE_EXEC = re.compile(r"^onednn_verbose,(?:v\d+,)?(?:primitive,)?exec,cpu,([a-z_]+),([^,]+),([a-z_]+),")
STEP_MARK = "STEP_SECONDS "


def worker(config):
    """Run the steps and print one STEP_SECONDS line per step (the verbose lines go to stdout in between)."""
    import mindspore as ms
    import numpy as np

    from src.heads import build_head
    from src.network import build_backbone
    from src.train.lr_schedule import learning_rates
    from src.train.optimizer import build_optimizer
    from src.train.train_network import FaceTrainNetwork
    from src.train.train_step import TrainStep

    backbone, width, embedding_size, image_size = NETWORKS[config["network"]]
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.device_context.cpu.op_tuning.threads_num(config["threads"])
    ms.set_seed(1)
    kwargs = {"width": width} if width != 1.0 else {}
    net = build_backbone(backbone, embedding_size=embedding_size, image_size=image_size, **kwargs)
    rng = np.random.RandomState(0)
    images = ms.Tensor(rng.uniform(-1, 1, (config["batch"], 3) + image_size).astype(np.float32))
    if config["infer"]:
        net.set_train(False)
        step = lambda: net(images).asnumpy()  # noqa: E731
    else:
        train_net = FaceTrainNetwork(net, build_head("cosface", embedding_size=embedding_size, num_classes=1000))
        labels = ms.Tensor(rng.randint(0, 1000, config["batch"]).astype(np.int32))
        optimizer = build_optimizer(train_net.trainable_params(), learning_rates(config["steps"], 0.01), 0.9, 5e-4)
        train_step = TrainStep(train_net, optimizer)
        train_step.set_train(True)
        step = lambda: train_step(images, labels)[0].asnumpy()  # noqa: E731
    for _ in range(config["steps"]):
        start = time.perf_counter()
        step()
        print(f"{STEP_MARK}{time.perf_counter() - start:.4f}", flush=True)


def torch_worker(config):
    """The PyTorch twin's training step time under the ISA in the environment."""
    import numpy as np
    import torch

    from benchmarks import torch_twins

    backbone, width, embedding_size, image_size = NETWORKS[config["network"]]
    if width != 1.0:
        return
    torch.set_num_threads(config["threads"])
    torch.manual_seed(1)
    net = torch_twins.FaceTrainNetwork(
        torch_twins.build_backbone(backbone, embedding_size, image_size),
        torch_twins.HEADS["cosface"](embedding_size, 1000),
    )
    optimizer = torch_twins.build_optimizer(net.parameters(), 0.01, 0.9, 5e-4)
    rng = np.random.RandomState(0)
    images = torch.from_numpy(rng.uniform(-1, 1, (config["batch"], 3) + image_size).astype(np.float32))
    labels = torch.from_numpy(rng.randint(0, 1000, config["batch"])).long()
    for _ in range(config["steps"]):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, _ = net(images, labels)
        loss.backward()
        optimizer.step()
        print(f"{STEP_MARK}{time.perf_counter() - start:.4f}", flush=True)


def run(config, isa, timeout):
    """One worker with ``isa`` (or oneDNN's default) -> (step seconds, {(kind, prop, impl): [count, ms]},
    {(kind, prop): set of ref shapes}) from its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    env.update(ONEDNN_VERBOSE="1", PYTHONPATH=ROOT)
    if isa != "default":
        env["ONEDNN_MAX_CPU_ISA"] = isa
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(config)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{config['network']} {isa}: worker exit {proc.returncode}: {tail}")
    steps, usage, ref_shapes = [], collections.defaultdict(lambda: [0, 0.0]), collections.defaultdict(set)
    for line in proc.stdout.splitlines():
        if line.startswith(STEP_MARK):
            steps.append(float(line[len(STEP_MARK) :]))
            continue
        match = VERBOSE_EXEC.match(line)
        if not match:
            continue
        kind, impl, prop = match.groups()
        fields = line.split(",")
        entry = usage[(kind, prop, impl)]
        entry[0] += 1
        entry[1] += float(fields[-1])
        if "ref" in impl:
            ref_shapes[(kind, prop)].add(fields[-2])
    return steps, usage, ref_shapes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument(
        "--backbones", nargs="+", default=["sphere20a", "sphere10w025", "mobilefacenet"], choices=sorted(NETWORKS)
    )
    parser.add_argument("--isas", nargs="+", default=["default", "AVX2"], help=f"e.g. {' '.join(CPU_ISAS)}")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--infer", action="store_true", help="forward passes of the backbone only")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch twin under each ISA")
    parser.add_argument("--timeout", type=int, default=3600)
    args = parser.parse_args(argv)
    print(f"CPU: {common.machine()['cpu']}; load {common.load_average()}")
    rows = []
    for name in args.backbones:
        for isa in args.isas:
            config = {
                "network": name,
                "batch": args.batch,
                "steps": args.steps,
                "threads": args.threads,
                "infer": args.infer,
            }
            steps, usage, ref_shapes = run(config, isa, args.timeout)
            rows.append(
                {
                    "network": name,
                    "isa": isa,
                    "first_step_s": steps[0],
                    "later_step_s": round(sum(steps[1:]) / max(len(steps) - 1, 1), 3),
                    "ref_execs": sum(v[0] for k, v in usage.items() if "ref" in k[2]),
                    "ref_ms": round(sum(v[1] for k, v in usage.items() if "ref" in k[2]), 1),
                    "onednn_ms": round(sum(v[1] for v in usage.values()), 1),
                }
            )
            print(
                f"\n## {name} batch {args.batch} {'inference' if args.infer else 'training'}, "
                f"ONEDNN_MAX_CPU_ISA={isa}: steps {steps} s"
            )
            for (kind, prop, impl), (count, ms) in sorted(usage.items(), key=lambda kv: -kv[1][1]):
                print(f"  {kind:14s} {prop:17s} {impl:32s} x{count:<5d} {ms:10.1f} ms")
            for (kind, prop), shapes in sorted(ref_shapes.items()):
                print(f"  ref {kind} {prop}: {len(shapes)} shapes, e.g. {sorted(shapes)[:4]}")
            if args.torch and not args.infer:
                torch_config = dict(config, job="torch")
                torch_steps, _, _ = run(torch_config, isa, args.timeout)
                if torch_steps:
                    rows[-1]["torch_later_step_s"] = round(sum(torch_steps[1:]) / max(len(torch_steps) - 1, 1), 3)
    print(
        "\n"
        + common.format_table(
            rows,
            [
                ("network", "network"),
                ("isa", "ONEDNN_MAX_CPU_ISA"),
                ("first_step_s", "1st step s"),
                ("later_step_s", "later steps s"),
                ("ref_execs", "ref execs"),
                ("ref_ms", "ref ms"),
                ("onednn_ms", "all oneDNN ms"),
                ("torch_later_step_s", "PyTorch s"),
            ],
        )
    )
    print(f"\nload average at end {common.load_average()}")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        job = json.loads(sys.argv[sys.argv.index("--worker") + 1])
        (torch_worker if job.get("job") == "torch" else worker)(job)
    else:
        main()
