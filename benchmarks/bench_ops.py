"""Operator choices, timed alone: the variants behind the project's defaults for the profiled hot spots.

    python benchmarks/bench_ops.py [--batch 32] [--steps 10]

  prelu        nn.PReLU's fused kernel vs relu(x) - w relu(-x) vs the project's C++ AOT kernel (CpuPReLU,
               src/kernels/prelu_cpu.cc), forward and forward + backward on the first sphere20a stage's
               activations (batch x 64 x 56 x 48). The composite beats nn.PReLU alone but not inside sphere20a
               (benchmarks/profile_train.py: its ReduceSum/Mul/Neg/ReluGrad cost as much as PReLU + PReLUGrad,
               and peak RSS grows from 1.9 to 3.4 GB at batch 32); the AOT kernel is what the networks use on
               the CPU (cpu_kernels: auto);
  depthwise    depthwise convolutions on MobileFaceNet-like shapes (3x3 stride 1 and 2, the global 7x6
               ``linear7``): nn.Conv2d(group=C) (oneDNN gemm:jit, one GEMM per group) vs the project's C++
               AOT kernel (DepthwiseConv2d, src/kernels/depthwise_cpu.cc; cpu_kernels: auto),
               forward and forward + backward (input and weight gradients);
  conv         dense 3x3 padding-1 convolutions, the stride-2 and residual ones of each stage of the digits demo's
               sphere10 at width 0.25 (batch 64, 32x32) and of sphere20a (batch 32, 112x96): nn.Conv2d (MindSpore
               calls oneDNN with plain NCHW / OIHW memory: x64:gemm:jit, im2col + GEMM) vs the project's kernel
               (Conv2d, src/kernels/conv_onednn.cc; cpu_kernels: auto, the same oneDNN with blocked
               layouts, jit:avx2, the reorders from and to NCHW included) vs PyTorch (the same with its own
               oneDNN), forward and forward + backward (input and weight gradients); measured: CONV_TABLE below;
  batchnorm    training-mode BatchNorm2d (batch statistics, moving-statistics update) on MobileFaceNet's 28x24 and
               56x48 stages (batch x 128 x 28 x 24, batch x 64 x 56 x 48): nn.BatchNorm2d (MindSpore's CPU
               BatchNorm / BatchNormGrad) vs the project's C++ AOT kernel (CpuBatchNorm2d,
               src/kernels/batchnorm_cpu.cc; cpu_kernels: auto) vs torch.nn.BatchNorm2d, forward
               and forward + backward (input, gamma and beta gradients) from a given output gradient dy: the other
               cases' gradient of a sum costs MindSpore more than a BatchNorm (its ReduceSum and the broadcast of
               the sum's gradient: 25-33 ms on 32x64x56x48, against 2 ms for PyTorch's sum().backward());
  cosine       the cosine head's x_n W_n^T: a Transpose + MatMul vs one MatMul(transpose_b), and the cost of
               re-normalising W (10,575 x 512) each step vs a cached W_n (possible only when W is frozen);
  finite_check TrainStep's NaN guard over sphere20a + head gradients: isfinite(g).all() per gradient vs one
               isfinite over the sum of per-gradient sums (NaN and Inf propagate through sums);
  optimizer    one SGD-momentum update of sphere20a + a 10,575-class head with weight decay on the weights:
               MindSpore's nn.SGD (SGD op, two buffers) vs the project's MomentumSGD (ApplyMomentum, one buffer)
               vs torch.optim.SGD.
PyTorch's time for the same computation is listed where it has one. GRAPH mode, ``--threads`` threads.

CONV_TABLE (ms, median of 10 after 2; ``python benchmarks/bench_ops.py --cases conv``, the final kernel, load
    3.6-4.1: another developer's test suite ran beside it, so single rows vary by 2x and the PyTorch rows are not
    usable; the sums are what the go / no-go went by. An earlier run of the first version at load 2.7-3.6 summed,
    fwd+bwd, demo 86.0 / 62.3 / 20.4 and sphere20a 2224.5 / 1714.7 / 725.4 ms (nn.Conv2d / kernel / PyTorch).
    Alone, outside a graph (ctypes, 2 threads, quiet), the kernel's 32x64x56x48 forward took 35 ms and backward
    90 ms, PyTorch's 29 + 81 (ONEDNN_VERBOSE: the same jit:avx2 implementations)):

    | shape | nn.Conv2d fwd | kernel fwd | torch fwd | nn.Conv2d fwd+bwd | kernel fwd+bwd | torch fwd+bwd |
    |---|---|---|---|---|---|---|
    | 64x3x32x32 -> 16 s2 | 0.7 | 0.7 | 9.7 | 15.2 | 3.6 | 192.0 |
    | 64x16x16x16 -> 16 s1 | 2.8 | 1.9 | 64.0 | 25.0 | 10.1 | 240.0 |
    | 64x16x16x16 -> 32 s2 | 1.5 | 1.1 | 0.4 | 11.4 | 9.1 | 11.9 |
    | 64x32x8x8 -> 32 s1 | 2.3 | 1.6 | 0.5 | 14.1 | 8.1 | 1.9 |
    | 64x32x8x8 -> 64 s2 | 3.6 | 3.9 | 0.3 | 23.1 | 5.3 | 1.4 |
    | 64x64x4x4 -> 64 s1 | 2.0 | 3.1 | 0.5 | 12.2 | 6.9 | 1.9 |
    | 64x64x4x4 -> 128 s2 | 3.5 | 1.0 | 0.4 | 15.6 | 2.4 | 1.7 |
    | 32x3x112x96 -> 64 s2 | 4.9 | 4.5 | 18.8 | 151.8 | 56.0 | 21.2 |
    | 32x64x56x48 -> 64 s1 | 39.6 | 62.0 | 59.7 | 381.6 | 198.5 | 124.1 |
    | 32x64x56x48 -> 128 s2 | 21.9 | 34.0 | 19.9 | 244.9 | 179.6 | 69.2 |
    | 32x128x28x24 -> 128 s1 | 102.1 | 30.7 | 34.1 | 327.4 | 171.7 | 107.0 |
    | 32x128x28x24 -> 256 s2 | 20.8 | 19.4 | 18.4 | 116.1 | 109.4 | 61.8 |
    | 32x256x14x12 -> 256 s1 | 39.4 | 112.1 | 32.9 | 587.3 | 308.0 | 300.0 |
    | 32x256x14x12 -> 512 s2 | 24.5 | 39.5 | 84.1 | 187.4 | 182.6 | 323.8 |
    | 32x512x7x6 -> 512 s1 | 77.1 | 67.0 | 140.0 | 324.4 | 326.9 | 257.2 |
    | sum demo (batch 64, 32x32) | 16.4 | 13.2 | 76.0 | 116.5 | 45.6 | 450.8 |
    | sum sphere20a (batch 32, 112x96) | 330.1 | 369.3 | 407.8 | 2320.8 | 1532.6 | 1264.4 |
"""

import argparse
import os
import sys

import numpy as np

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))

from benchmarks import common  # noqa: E402

COLUMNS = [
    ("case", "case"),
    ("variant", "variant"),
    ("framework", "framework"),
    ("ms", "ms (median)"),
    ("ms_min", "min"),
    ("ms_max", "max"),
    ("load", "load 1/5/15"),
]


# (channels, height, width) of the input, kernel, stride, padding: MobileFaceNet at 112x96 (a stride-1 bottleneck
# of the 28x24 stage, the first stride-2 one at 56x48, linear7).
DEPTHWISE_CASES = (((128, 28, 24), 3, 1, 1), ((64, 56, 48), 3, 2, 1), ((512, 7, 6), (7, 6), 1, 0))


# batch, (channels, height, width) of the input, output channels, stride of a 3x3 padding-1 convolution: the digits
# demo's sphere10 at width 0.25 (32x32, batch 64), then sphere20a's (112x96, batch 32), each stage's stride-2 and
# residual convolutions.
CONV_CASES = (
    (64, (3, 32, 32), 16, 2),
    (64, (16, 16, 16), 16, 1),
    (64, (16, 16, 16), 32, 2),
    (64, (32, 8, 8), 32, 1),
    (64, (32, 8, 8), 64, 2),
    (64, (64, 4, 4), 64, 1),
    (64, (64, 4, 4), 128, 2),
    (32, (3, 112, 96), 64, 2),
    (32, (64, 56, 48), 64, 1),
    (32, (64, 56, 48), 128, 2),
    (32, (128, 28, 24), 128, 1),
    (32, (128, 28, 24), 256, 2),
    (32, (256, 14, 12), 256, 1),
    (32, (256, 14, 12), 512, 2),
    (32, (512, 7, 6), 512, 1),
)
# (channels, height, width) of a training-mode BatchNorm2d's input: MobileFaceNet at 112x96, a bottleneck's expanded
# 28x24 and 56x48 maps.
BATCHNORM_CASES = ((128, 28, 24), (64, 56, 48))
CASES = ("prelu", "depthwise", "conv", "batchnorm", "cosine", "finite_check", "optimizer")


def conv_shape(batch, channels, height, width, out_channels, stride):
    """'32x64x56x48 -> 128 s2', the row label of a conv case."""
    return f"{batch}x{channels}x{height}x{width} -> {out_channels} s{stride}"


def depthwise_shape(batch, channels, height, width, kernel, stride):
    """'32x128x28x24 k3 s1', the row label of a depthwise case."""
    kernel = "x".join(map(str, kernel)) if isinstance(kernel, tuple) else kernel
    return f"{batch}x{channels}x{height}x{width} k{kernel} s{stride}"


def timing(durations):
    ms = sorted(1000.0 * d for d in durations)
    return {"ms": round(ms[len(ms) // 2], 2), "ms_min": round(ms[0], 2), "ms_max": round(ms[-1], 2)}


def mindspore_cases(args):
    import mindspore as ms
    from mindspore import nn, ops

    from src.heads.centres import l2_normalize
    from src.kernels.batchnorm import CpuBatchNorm2d
    from src.kernels.conv import KernelConv2d
    from src.kernels.prelu import CpuPReLU
    from src.model_utils.cpu_isa import apply_cpu_isa
    from src.network import build_backbone
    from src.network.layers import batch_norm, conv2d
    from src.train.optimizer import MomentumSGD, param_groups

    apply_cpu_isa(args.cpu_isa)
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.device_context.cpu.op_tuning.threads_num(args.threads)
    rng = np.random.RandomState(0)

    class SumOf(nn.Cell):
        def __init__(self, cell):
            super().__init__()
            self.cell = cell

        def construct(self, *inputs):
            return self.cell(*inputs).sum()

    def forward_backward(cell, *inputs):
        grad = ms.jit(ms.value_and_grad(SumOf(cell), 0, cell.trainable_params()))
        return lambda: grad(*inputs)[0].asnumpy()

    def forward(cell, *inputs):
        return lambda: cell(*inputs).asnumpy()

    def backward_from(cell, x, dy):
        """Forward + backward of ``cell`` at ``x`` with the output gradient ``dy`` (no loss)."""
        grad = ops.GradOperation(get_all=True, get_by_list=True, sens_param=True)
        weights = ms.ParameterTuple(cell.trainable_params())

        @ms.jit
        def step(x, dy):
            return grad(cell, weights)(x, dy)

        return lambda: step(x, dy)[0][0].asnumpy()

    def run(case, variant, fn):
        rows.append(
            dict(
                case=case,
                variant=variant,
                framework="mindspore",
                load=common.load_average(),
                **timing(common.time_steps(fn, args.steps, args.warmup)),
            )
        )

    class CompositePReLU(nn.Cell):
        """max(0, x) + w min(0, x) = relu(x) - w relu(-x)."""

        def __init__(self, channels):
            super().__init__()
            self.w = ms.Parameter(ms.Tensor(np.full((channels,), 0.25, np.float32)), name="w")

        def construct(self, x):
            return ops.relu(x) - self.w.reshape(1, -1, 1, 1) * ops.relu(-x)

    rows = []
    if "prelu" in args.cases:
        x = ms.Tensor(rng.standard_normal((args.batch, 64, 56, 48)).astype(np.float32))
        run("prelu", "nn.PReLU forward", forward(nn.PReLU(64, w=0.25), x))
        run("prelu", "relu(x) - w relu(-x) forward", forward(CompositePReLU(64), x))
        run("prelu", "nn.PReLU forward + backward", forward_backward(nn.PReLU(64, w=0.25), x))
        run("prelu", "relu(x) - w relu(-x) forward + backward", forward_backward(CompositePReLU(64), x))
        run("prelu", "CpuPReLU (C++ AOT) forward", forward(CpuPReLU(nn.PReLU(64, w=0.25)), x))
        run("prelu", "CpuPReLU (C++ AOT) forward + backward", forward_backward(CpuPReLU(nn.PReLU(64, w=0.25)), x))

    for (channels, height, width), kernel, stride, padding in DEPTHWISE_CASES if "depthwise" in args.cases else ():
        x = ms.Tensor(rng.standard_normal((args.batch, channels, height, width)).astype(np.float32))
        shape = depthwise_shape(args.batch, channels, height, width, kernel, stride)
        for kernel_cell, label in ((False, "nn.Conv2d(group=C)"), (True, "DepthwiseConv2d (C++ AOT)")):
            cell = conv2d(channels, channels, kernel, stride, padding, group=channels)
            cell = KernelConv2d(cell) if kernel_cell else cell
            run("depthwise", f"{shape} {label} forward", forward(cell, x))
            run("depthwise", f"{shape} {label} forward + backward", forward_backward(cell, x))

    for batch, (channels, height, width), out_channels, stride in CONV_CASES if "conv" in args.cases else ():
        x = ms.Tensor(rng.standard_normal((batch, channels, height, width)).astype(np.float32))
        shape = conv_shape(batch, channels, height, width, out_channels, stride)
        for kernel_cell, label in ((False, "nn.Conv2d"), (True, "Conv2d (oneDNN blocked)")):
            cell = conv2d(channels, out_channels, 3, stride, 1)
            cell = KernelConv2d(cell) if kernel_cell else cell
            run("conv", f"{shape} {label} forward", forward(cell, x))
            run("conv", f"{shape} {label} forward + backward", forward_backward(cell, x))

    for channels, height, width in BATCHNORM_CASES if "batchnorm" in args.cases else ():
        x, dy = (ms.Tensor(rng.standard_normal((args.batch, channels, height, width)).astype(np.float32)) for _ in "xy")
        shape = f"{args.batch}x{channels}x{height}x{width}"
        for kernel_cell, label in ((False, "nn.BatchNorm2d"), (True, "CpuBatchNorm2d (C++ AOT)")):
            cell = CpuBatchNorm2d(batch_norm(channels)) if kernel_cell else batch_norm(channels)
            cell.set_train(True)
            run("batchnorm", f"{shape} {label} forward", forward(cell, x))
            run("batchnorm", f"{shape} {label} forward + backward (given dy)", backward_from(cell, x, dy))

    class Cosine(nn.Cell):
        def __init__(self, transpose_b, cached):
            super().__init__()
            weight = rng.standard_normal((args.num_classes, 512)).astype(np.float32)
            self.weight = ms.Parameter(ms.Tensor(weight), name="weight")
            self.transpose_b, self.cached = transpose_b, cached
            self.matmul = ops.MatMul(transpose_b=True)

        def construct(self, e):
            w = self.weight if self.cached else l2_normalize(self.weight)
            if self.transpose_b:
                return self.matmul(l2_normalize(e), w)
            return ops.matmul(l2_normalize(e), w.T)

    if "cosine" in args.cases:
        e = ms.Tensor(rng.standard_normal((args.batch, 512)).astype(np.float32))
        run("cosine", "matmul(x_n, W_n.T) forward + backward", forward_backward(Cosine(False, False), e))
        run("cosine", "MatMul(transpose_b)(x_n, W_n) forward + backward", forward_backward(Cosine(True, False), e))
        run("cosine", "MatMul(transpose_b)(x_n, W_n) forward", forward(Cosine(True, False), e))
        run("cosine", "MatMul(transpose_b), W_n cached forward", forward(Cosine(True, True), e))

    if "finite_check" in args.cases:
        shapes = [p.shape for p in build_backbone("sphere20a").trainable_params()] + [(args.num_classes, 512)]
        grads = tuple(ms.Tensor(rng.standard_normal(s).astype(np.float32)) for s in shapes)

        @ms.jit
        def all_per_gradient(gs):
            finite = ops.isfinite(gs[0]).all()
            for g in gs[1:]:
                finite = ops.logical_and(finite, ops.isfinite(g).all())
            return finite

        @ms.jit
        def sum_of_sums(gs):
            return ops.isfinite(ops.addn([g.sum() for g in gs]))

        run("finite_check", f"isfinite(g).all() per gradient ({len(grads)})", lambda: all_per_gradient(grads).asnumpy())
        run("finite_check", "isfinite(sum of gradient sums)", lambda: sum_of_sums(grads).asnumpy())

    class Update(nn.Cell):
        def __init__(self, optimizer):
            super().__init__()
            self.optimizer = optimizer

        def construct(self, *gradients):
            return self.optimizer(gradients)

    def update(optimizer, params, grads):
        cell, probe = Update(optimizer), params[0]
        return lambda: (cell(*grads), probe.asnumpy())

    rates = ms.Tensor(np.full(args.steps + args.warmup, 1e-6, np.float32))
    optimizers = (
        ("nn.SGD", lambda groups: nn.SGD(groups, learning_rate=rates, momentum=0.9)),
        ("MomentumSGD (ApplyMomentum)", lambda groups: MomentumSGD(groups, rates, 0.9)),
    )
    for label, build in optimizers if "optimizer" in args.cases else ():
        shapes = [p.shape for p in build_backbone("sphere20a").trainable_params()] + [(args.num_classes, 512)]
        params = [ms.Parameter(ms.Tensor(np.zeros(s, np.float32)), name=f"p{i}") for i, s in enumerate(shapes)]
        groups = param_groups(params, 5e-4)
        ordered = [p for g in groups for p in g["params"]]
        grads = tuple(ms.Tensor(rng.standard_normal(p.shape).astype(np.float32)) for p in ordered)
        size = sum(p.size for p in params) / 1e6
        run("optimizer", f"{label} update, sphere20a + head ({size:.1f} M)", update(build(groups), ordered, grads))
    return rows


def torch_cases(args):
    import torch
    import torch.nn.functional as F

    from src.model_utils.cpu_isa import apply_cpu_isa

    apply_cpu_isa("auto")  # PyTorch's oneDNN is faster capped at AVX2 too (benchmarks/onednn_paths.py --torch)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []

    def forward(cell, x):
        with torch.inference_mode():
            cell(x)

    def run(case, variant, fn):
        rows.append(
            dict(
                case=case,
                variant=variant,
                framework="torch",
                load=common.load_average(),
                **timing(common.time_steps(fn, args.steps, args.warmup)),
            )
        )

    if "prelu" in args.cases:
        x = torch.randn(args.batch, 64, 56, 48, requires_grad=True)
        prelu = torch.nn.PReLU(64, 0.25)
        run("prelu", "nn.PReLU forward", lambda: forward(prelu, x))
        run("prelu", "nn.PReLU forward + backward", lambda: prelu(x).sum().backward())
    for (channels, height, width), kernel, stride, padding in DEPTHWISE_CASES if "depthwise" in args.cases else ():
        x = torch.randn(args.batch, channels, height, width, requires_grad=True)
        conv = torch.nn.Conv2d(channels, channels, kernel, stride, padding, groups=channels, bias=False)
        shape = depthwise_shape(args.batch, channels, height, width, kernel, stride)
        run("depthwise", f"{shape} nn.Conv2d(groups=C) forward", lambda conv=conv, x=x: forward(conv, x))
        run(
            "depthwise",
            f"{shape} nn.Conv2d(groups=C) forward + backward",
            lambda conv=conv, x=x: conv(x).sum().backward(),
        )
    for batch, (channels, height, width), out_channels, stride in CONV_CASES if "conv" in args.cases else ():
        x = torch.randn(batch, channels, height, width, requires_grad=True)
        conv = torch.nn.Conv2d(channels, out_channels, 3, stride, 1, bias=False)
        shape = conv_shape(batch, channels, height, width, out_channels, stride)
        run("conv", f"{shape} nn.Conv2d forward", lambda conv=conv, x=x: forward(conv, x))
        run("conv", f"{shape} nn.Conv2d forward + backward", lambda conv=conv, x=x: conv(x).sum().backward())
    for channels, height, width in BATCHNORM_CASES if "batchnorm" in args.cases else ():
        x = torch.randn(args.batch, channels, height, width, requires_grad=True)
        dy = torch.randn(args.batch, channels, height, width)
        bn = torch.nn.BatchNorm2d(channels)  # training mode
        shape = f"{args.batch}x{channels}x{height}x{width}"
        run("batchnorm", f"{shape} nn.BatchNorm2d forward", lambda bn=bn, x=x: forward(bn, x))
        run(
            "batchnorm",
            f"{shape} nn.BatchNorm2d forward + backward (given dy)",
            lambda bn=bn, x=x, dy=dy: bn(x).backward(dy),
        )
    if "cosine" in args.cases:
        weight = torch.randn(args.num_classes, 512, requires_grad=True)
        e = torch.randn(args.batch, 512, requires_grad=True)
        run(
            "cosine",
            "F.linear(x_n, W_n) forward + backward",
            lambda: F.linear(F.normalize(e), F.normalize(weight)).sum().backward(),
        )
    if "optimizer" in args.cases:
        from benchmarks.torch_twins import build_backbone

        shapes = [p.shape for p in build_backbone("sphere20a", 512, (112, 96)).parameters()]
        params = [torch.zeros(s, requires_grad=True) for s in shapes + [(args.num_classes, 512)]]
        for p in params:
            p.grad = torch.randn(p.shape)
        groups = [
            {"params": [p for p in params if p.ndim > 1], "weight_decay": 5e-4},
            {"params": [p for p in params if p.ndim <= 1]},
        ]
        size = sum(p.numel() for p in params) / 1e6
        optimizer = torch.optim.SGD(groups, 1e-6, 0.9)
        run("optimizer", f"torch.optim.SGD update, sphere20a + head ({size:.1f} M)", optimizer.step)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument(
        "--cases", nargs="+", choices=CASES, default=list(CASES), help="the cases to run (default: all)"
    )
    parser.add_argument("--batch", type=int, default=32, help="batch of every case but conv (which has its own)")
    parser.add_argument("--num_classes", type=int, default=10575)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpu_isa", default="auto", help="the project's cpu_isa for MindSpore (native: oneDNN's own)")
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "bench_ops.json"))
    args = parser.parse_args(argv)
    script = os.path.abspath(__file__)
    rows = []
    for framework in ("mindspore", "torch"):
        result = common.run_worker(script, dict(vars(args), framework=framework))
        if "error" in result:
            raise SystemExit(f"{framework}: {result['error']}")
        rows += result["rows"]
    rows.sort(key=lambda r: r["case"])
    common.finish("ops", args, rows, COLUMNS, lambda row: f"{row['case']} {row['variant']}")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        common.worker_main(
            lambda c: {
                "rows": (mindspore_cases if c["framework"] == "mindspore" else torch_cases)(argparse.Namespace(**c))
            }
        )
    else:
        main()
