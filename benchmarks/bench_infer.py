"""Inference throughput of the embedding network: the checkpoint, the exported MINDIR, ONNX Runtime on the exported
ONNX, the C++ MindSpore Lite harness (with ``--lite``) and the PyTorch twin, on the same machine, weights and batch.

    python benchmarks/bench_infer.py            # sphere20a + MobileFaceNet, batch 64
    python benchmarks/bench_infer.py --full     # + iResNet-50 and the checkpoint in PYNATIVE mode
    python benchmarks/bench_infer.py --lite     # + lite-cpp (ascend310_infer/face_infer)

The PyTorch twin (benchmarks/torch_twins.py) writes the initial weights; they are mapped into a MindSpore
checkpoint, which the project's own ``export.py`` turns into MINDIR and ONNX (each export in its own process:
a second ONNX export in one process fails). Runtimes:
  mindspore-ckpt   the backbone built by ``build_backbone`` + ``load_backbone_weights``, ``set_train(False)``;
  mindspore-mindir ``nn.GraphCell(ms.load(file))``;
  onnxruntime      ``InferenceSession`` with ``--threads`` intra-op threads;
  pytorch          the twin in ``eval()`` under ``torch.inference_mode()`` with ``--threads`` threads;
  lite-cpp         (``--lite``) the C++ harness ``ascend310_infer/face_infer`` (MindSpore Lite 2.0.0 C++ API) with
                   ``--thread_num`` = ``--threads``, on the exported ONNX converted by ``tools/to_lite.py`` (a
                   fixed-batch Lite MINDIR in the work folder, PReLU kept). The harness is built once per run with
                   ``ascend310_infer/build.sh``; Lite comes from $MINDSPORE_LITE_HOME, else ``tools/fetch_lite.sh``
                   (downloaded on first use). Without cmake, a C++ compiler, a Python 3.7 for the converter or Lite
                   the runtime is skipped with the reason printed (and kept as ``lite_skipped`` in the JSON).
Each runs in its own subprocess (its own peak RSS), in alternating order on odd rounds; img/s is batch / median
time of a forward pass after the warm-up passes. ``max abs diff`` compares each runtime's embeddings with PyTorch's.

lite-cpp gets the same batch as its input files, written once and listed in its index once per pass (max(warm-up,
1) + steps passes of one batch each); its times are the harness's per-batch ``Model::Predict`` times
(``--batch_times``), so the median, min and max are over the same timed passes as the others', with the first pass
as ``first_step_s``. They exclude the harness's file I/O (reading the inputs into the input tensor, writing the
embeddings), where the Python runtimes' times include wrapping the input and copying the output to NumPy. Its peak
RSS is the harness process's. Its worker sets no oneDNN ISA cap (at batch 64 the AVX2 cap changed nothing beyond
the noise, load 5-6).
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))

from benchmarks import common  # noqa: E402
from benchmarks.nets import NETWORKS, make_batch, parse_variant  # noqa: E402
from src.model_utils.cpu_isa import apply_cpu_isa  # noqa: E402

COLUMNS = [
    ("backbone", "backbone"),
    ("batch", "batch"),
    ("runtime", "runtime"),
    ("mode", "mode"),
    ("variant", "settings"),
    ("onednn_cap", "oneDNN cap"),
    ("img_s", "img/s (median)"),
    ("img_s_min", "min"),
    ("img_s_max", "max"),
    ("ratio", "vs fastest PT"),
    ("max_diff", "max abs diff vs PT"),
    ("peak_rss_mib", "peak RSS MiB"),
    ("load", "load 1/5/15"),
]


# --- workers ---------------------------------------------------------------------------------------------------
def init_weights(c):
    """The PyTorch twin backbone with seed 1 -> arrays in ``c['weights']``."""
    import torch

    from benchmarks import torch_twins

    torch.manual_seed(1)
    embedding_size, image_size = NETWORKS[c["backbone"]]
    np.savez(
        c["weights"], **torch_twins.state_arrays(torch_twins.build_backbone(c["backbone"], embedding_size, image_size))
    )
    return {}


def write_checkpoint(c):
    """The twin's arrays as a MindSpore backbone checkpoint ``c['checkpoint']``."""
    import mindspore as ms

    from benchmarks.ms_side import load_twin_weights
    from src.network import build_backbone

    apply_cpu_isa("auto")
    ms.set_device("CPU")
    embedding_size, image_size = NETWORKS[c["backbone"]]
    backbone = build_backbone(c["backbone"], embedding_size=embedding_size, image_size=image_size)
    load_twin_weights(backbone, c["weights"], c["backbone"], embedding_size, image_size)
    ms.save_checkpoint(backbone, c["checkpoint"])
    return {}


def forward_torch(c, images):
    import torch

    from benchmarks import torch_twins

    torch.set_num_threads(c["threads"])
    embedding_size, image_size = NETWORKS[c["backbone"]]
    net = torch_twins.build_backbone(c["backbone"], embedding_size, image_size)
    with np.load(c["weights"]) as data:
        net.load_state_dict({k: torch.from_numpy(data[k]) for k in data.files}, strict=False)
    net.eval()
    batch = torch.from_numpy(images)

    def run():
        with torch.inference_mode():
            return net(batch).numpy()

    return run


def forward_mindspore_ckpt(c, images):
    import mindspore as ms

    from benchmarks.ms_side import accelerate, setup_device
    from src.network import build_backbone
    from src.network.fold_bn import fold_batch_norms
    from src.network.weights import load_backbone_weights

    kernels = setup_device(c["mode"], c["settings"], c["backbone"])
    embedding_size, image_size = NETWORKS[c["backbone"]]
    backbone = load_backbone_weights(
        build_backbone(c["backbone"], embedding_size=embedding_size, image_size=image_size), c["checkpoint"]
    )
    if c["settings"] is None or c["settings"].get("fold_bn"):
        fold_batch_norms(backbone)
    backbone = accelerate(backbone, kernels)
    backbone.set_train(False)
    batch = ms.Tensor(images)
    return lambda: backbone(batch).asnumpy()


def forward_mindspore_mindir(c, images):
    import mindspore as ms
    from mindspore import nn

    from benchmarks.ms_side import setup_device

    setup_device(c["mode"], c["settings"])
    graph = nn.GraphCell(ms.load(c["mindir"]))
    batch = ms.Tensor(images)
    return lambda: graph(batch).asnumpy()


def forward_onnxruntime(c, images):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = c["threads"]
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(c["onnx"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: images})[0]


def run_lite(c):
    """The C++ harness on the batch, written once as its input files and listed in its index once per pass (the
    warm-up passes, at least one, then the timed ones); each batch's Predict time comes from ``--batch_times``."""
    import resource

    from src.deploy.bin_layout import read_arrays, write_array, write_index
    from src.deploy.lite_harness import parse_summary, read_batch_times, run_face_infer

    _, image_size = NETWORKS[c["backbone"]]
    images, _ = make_batch(c["batch"], image_size, 2)
    names = [f"{i:04d}.bin" for i in range(c["batch"])]
    folder = c["lite_dir"]
    for name, image in zip(names, images):
        write_array(os.path.join(folder, "input", name), image)
    passes = max(c["warmup"], 1) + c["steps"]
    write_index(os.path.join(folder, "input"), names * passes, f"the benchmark batch, {passes} passes")
    times_file = os.path.join(folder, "batch_times.txt")
    threads = ["--thread_num", str(c["threads"])]
    extra = [*threads, "--warmup", "0", "--batch_times", times_file]
    result = run_face_infer(
        c["face_infer"],
        c["lite_model"],
        os.path.join(folder, "input"),
        os.path.join(folder, "output"),
        *extra,
        timeout=3600,
    )
    if result.returncode != 0:
        return {"error": f"face_infer exit code {result.returncode}: " + " | ".join(result.stderr.splitlines()[-5:])}
    summary = parse_summary(result.stdout)
    durations = read_batch_times(times_file)
    if summary["batches"] != passes or len(durations) != passes:
        return {"error": f"face_infer ran {summary['batches']} batches ({len(durations)} timed), expected {passes}"}
    np.save(c["output"], read_arrays(os.path.join(folder, "output"), names))
    return dict(
        common.rate_summary(durations[-c["steps"] :], c["batch"]),
        first_step_s=round(durations[0], 2),
        # The harness's own peak (this worker only writes files and waits for it).
        peak_rss_mib=common.peak_rss_mib(resource.RUSAGE_CHILDREN),
    )


RUNTIMES = {
    "pytorch": forward_torch,
    "mindspore-ckpt": forward_mindspore_ckpt,
    "mindspore-mindir": forward_mindspore_mindir,
    "onnxruntime": forward_onnxruntime,
}


def worker(c):
    common.apply_worker_isa(c)
    if c["job"] == "init":
        return init_weights(c)
    if c["job"] == "checkpoint":
        return write_checkpoint(c)
    if c["job"] == "lite-cpp":
        return run_lite(c)
    _, image_size = NETWORKS[c["backbone"]]
    images, _ = make_batch(c["batch"], image_size, 2)
    run = RUNTIMES[c["job"]](c, images)
    outputs = []
    first = common.time_steps(lambda: outputs.append(run()), 1, 0)[0]
    durations = common.time_steps(run, c["steps"], max(c["warmup"] - 1, 0))
    np.save(c["output"], outputs[0])
    return dict(common.rate_summary(durations, c["batch"]), first_step_s=round(first, 2))


# --- driver ----------------------------------------------------------------------------------------------------
def export(c, file_format, workdir):
    """``python export.py`` for the checkpoint, as a user runs it; returns the exported file."""
    embedding_size, image_size = NETWORKS[c["backbone"]]
    base = os.path.join(workdir, f"{c['backbone']}_b{c['batch']}")
    command = [
        sys.executable,
        os.path.join(common.ROOT, "export.py"),
        "--device_target=CPU",
        f"--backbone={c['backbone']}",
        f"--embedding_size={embedding_size}",
        f"--image_size=[{image_size[0]}, {image_size[1]}]",
        f"--ckpt_file={c['checkpoint']}",
        f"--file_format={file_format}",
        f"--export_batch_size={c['batch']}",
        f"--file_name={base}",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=workdir, check=False)
    path = base + {"MINDIR": ".mindir", "ONNX": ".onnx"}[file_format]
    if proc.returncode != 0 or not os.path.exists(path):
        raise SystemExit(f"export.py {file_format} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return path


def prepare_lite(workdir):
    """Lite's folder and the harness built into ``workdir`` -> (lite home, face_infer), or (None, why not). The
    build tools and the converter's Python 3.7 are checked first: finding Lite may download it."""
    from src.deploy.lite_convert import ConversionError, find_lite_home, find_python37
    from src.deploy.lite_harness import HarnessError, build_face_infer, check_build_tools, lite_home

    try:
        check_build_tools()
        find_python37()
        home = find_lite_home(lite_home())
        return home, build_face_infer(os.path.join(workdir, "face_infer_build"), home)
    except (ConversionError, HarnessError) as error:
        return None, str(error)


def convert_to_lite(onnx_path, home):
    """``python tools/to_lite.py`` on the exported ONNX, as a user runs it -> (Lite MINDIR, None) or (None, why)."""
    path = onnx_path[: -len(".onnx")] + "_lite.mindir"
    command = [sys.executable, os.path.join(common.ROOT, "tools", "to_lite.py"), onnx_path, path, "--lite-home", home]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not os.path.exists(path):
        return None, f"tools/to_lite.py failed ({proc.returncode}): " + " | ".join(proc.stderr.splitlines()[-5:])
    return path, None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--backbones", nargs="+", default=["sphere20a", "mobilefacenet"], choices=sorted(NETWORKS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["GRAPH"],
        choices=["GRAPH", "PYNATIVE"],
        help="MindSpore modes of the checkpoint runtime",
    )
    parser.add_argument("--steps", type=int, default=10, help="timed forward passes per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed passes first (the first compiles)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each runtime, order alternating")
    parser.add_argument(
        "--threads", type=int, default=2, help="PyTorch and ONNX Runtime intra-op threads, MindSpore Lite threads"
    )
    common.torch_isa_argument(parser)
    parser.add_argument(
        "--ms_settings",
        action="append",
        default=None,
        help="MindSpore variant 'name:key=value,...' as in bench_train.py (root=PATH: another copy of "
        "the project; 'project', the default: init_device with the schema defaults)",
    )
    parser.add_argument("--full", action="store_true", help="every backbone, GRAPH and PYNATIVE")
    parser.add_argument(
        "--lite",
        action="store_true",
        help="also the C++ MindSpore Lite harness (ascend310_infer/face_infer) on the ONNX converted by "
        "tools/to_lite.py; needs MindSpore Lite (MINDSPORE_LITE_HOME or tools/fetch_lite.sh), a Python 3.7, "
        "cmake and a C++ compiler, and is skipped with the reason when one is missing",
    )
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "bench_infer.json"))
    args = parser.parse_args(argv)
    if args.full:
        args.backbones, args.modes = sorted(NETWORKS), ["GRAPH", "PYNATIVE"]
    args.variants = [parse_variant(text) for text in (args.ms_settings or ["project:"])]
    return args


def main(argv=None):
    common.setup_logging()
    args = parse_args(argv)
    script = os.path.abspath(__file__)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_infer_") as workdir:
        lite_home = face_infer = None
        if args.lite:
            lite_home, face_infer = prepare_lite(workdir)
            if lite_home is None:
                args.lite_skipped = face_infer
                print(f"lite-cpp skipped: {face_infer}", flush=True)
        for backbone in args.backbones:
            base = {
                "backbone": backbone,
                "batch": args.batch,
                "steps": args.steps,
                "warmup": args.warmup,
                "threads": args.threads,
                "weights": os.path.join(workdir, f"{backbone}.npz"),
                "checkpoint": os.path.join(workdir, f"{backbone}.ckpt"),
            }
            for job in ("init", "checkpoint"):
                result = common.run_worker(script, dict(base, job=job))
                if "error" in result:
                    raise SystemExit(f"{backbone}: {job} failed: {result['error']}")
            base.update(mindir=export(base, "MINDIR", workdir), onnx=export(base, "ONNX", workdir))
            jobs = common.torch_jobs("pytorch", args.torch_isa) + [("onnxruntime", "-", "-", None, None)]
            lite_error = None
            if lite_home:
                lite_model, lite_error = convert_to_lite(base["onnx"], lite_home)
                if lite_model:
                    base.update(lite_model=lite_model, face_infer=face_infer, lite_dir=os.path.join(workdir, backbone))
                    jobs.append(("lite-cpp", "-", "-", None, None))
            jobs += [
                ("mindspore-ckpt", mode, name, settings, root)
                for mode in args.modes
                for name, settings, root in args.variants
            ]
            jobs += [("mindspore-mindir", "GRAPH", name, settings, root) for name, settings, root in args.variants]

            def output_of(job, backbone=backbone):
                return {"output": os.path.join(workdir, f"{backbone}_{job[0]}_{job[1]}_{job[2]}.npy")}

            runs = common.run_rounds(script, base, jobs, args.rounds, f"{backbone} batch {args.batch}", extra=output_of)
            reference = np.load(runs[jobs[0][:3]][0]["output"])
            group = []
            for (runtime, mode, name), results in runs.items():
                row = {"backbone": backbone, "batch": args.batch, "runtime": runtime, "mode": mode, "variant": name}
                ok = [r for r in results if "error" not in r]
                if not ok:
                    row["error"] = results[0]["error"]
                else:
                    row.update(common.rate_summary([d for r in ok for d in r["step_s"]], args.batch))
                    row.update(
                        first_step_s=min(r["first_step_s"] for r in ok),
                        peak_rss_mib=max(r["peak_rss_mib"] for r in ok),
                        onednn_cap=ok[0]["onednn_cap"],
                        load=ok[-1]["load_after"],
                        max_diff=float(np.abs(np.load(ok[0]["output"]) - reference).max()),
                        runs=[{k: r[k] for k in ("img_s", "load_before", "load_after", "wall_s")} for r in ok],
                    )
                group.append(row)
            if lite_error:
                row = {"backbone": backbone, "batch": args.batch, "runtime": "lite-cpp", "mode": "-", "variant": "-"}
                group.append(dict(row, error=lite_error))
            torch_rate = max((r.get("img_s") or 0 for r in group if r["runtime"] == "pytorch"), default=None)
            for row in group:
                if torch_rate and row.get("img_s"):
                    row["ratio"] = round(row["img_s"] / torch_rate, 2)
            rows += group
            print(common.format_table(group, COLUMNS), flush=True)
    common.finish(
        "infer", args, rows, COLUMNS, lambda row: f"{row['backbone']} {row['runtime']} {row['mode']} {row['variant']}"
    )


if __name__ == "__main__":
    if "--worker" in sys.argv:
        common.worker_main(worker)
    else:
        main()
