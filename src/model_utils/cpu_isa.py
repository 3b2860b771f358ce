"""The instruction set MindSpore's oneDNN CPU kernels may use, chosen before the first primitive is created.

On CPUs with AVX-512, the oneDNN inside MindSpore 2.10 runs plain-layout (NCHW) convolutions, forward and
backward-data, through ``jit_uni_ncsp:conv+ref:any``, a reference path many times slower than the GEMM path
(``x64:gemm:jit``) it takes when capped at AVX2 (``benchmarks/onednn_paths.py`` lists the primitives, shapes and
times; docs/performance.md, "The CPU kernels and the instruction set"). oneDNN reads its cap from
``ONEDNN_MAX_CPU_ISA`` once, when it first dispatches, so the variable must be in this process's environment
before MindSpore runs its first CPU operator; worker processes (msrun, multiprocessing) inherit it.

The project's own convolution kernel (src/kernels/conv_onednn.cc) asks oneDNN for blocked layouts instead, for
which oneDNN's AVX-512 JIT convolutions are the fastest on such a CPU: with the kernels every backbone trains faster
uncapped than capped (the figures are in docs/performance.md).

``cpu_isa`` (config key): ``auto`` caps at AVX2 on CPUs that report ``avx512f`` (and leaves other CPUs alone) unless
every convolution of the run goes through the project's kernels (the caller says so: ``kernel_convolutions``),
``native`` leaves oneDNN's own choice, any other value is the cap itself. A cap already set in the environment
(``ONEDNN_MAX_CPU_ISA`` or the older ``DNNL_MAX_CPU_ISA``) is the user's and is kept. GPU and Ascend runs are not
touched: their convolutions do not go through oneDNN.
"""

import os

# config value -> oneDNN's name for the cap (oneDNN documentation, "CPU dispatcher control").
ONEDNN_ISAS = {
    "sse41": "SSE41",
    "avx": "AVX",
    "avx2": "AVX2",
    "avx2_vnni": "AVX2_VNNI",
    "avx512_core": "AVX512_CORE",
    "avx512_core_vnni": "AVX512_CORE_VNNI",
    "avx512_core_bf16": "AVX512_CORE_BF16",
    "avx512_core_amx": "AVX512_CORE_AMX",
}
CHOICES = ("auto", "native") + tuple(ONEDNN_ISAS)
ENV_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# CPU flags (as /proc/cpuinfo spells them) with which auto caps the ISA, and the cap.
SLOW_PATH_FLAG = "avx512f"
AUTO_CAP = "AVX2"


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The feature flags of the first processor listed in ``cpuinfo`` (empty where there is no such file)."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def choose_isa(setting, flags, kernel_convolutions=False):
    """The oneDNN cap for ``setting`` on a CPU with ``flags``, or None to leave oneDNN's own choice;
    ``kernel_convolutions``: every convolution of the run goes through the project's kernels (no MindSpore
    convolution in NCHW), so ``auto`` needs no cap."""
    if setting not in CHOICES:
        raise ValueError(f"cpu_isa {setting!r} is not one of {list(CHOICES)}")
    if setting == "native":
        return None
    if setting == "auto":
        slow_path = SLOW_PATH_FLAG in flags and "avx2" in flags
        return AUTO_CAP if slow_path and not kernel_convolutions else None
    return ONEDNN_ISAS[setting]


def apply_cpu_isa(setting, device_target="CPU", environ=None, cpuinfo="/proc/cpuinfo", kernel_convolutions=False):
    """Put the cap for ``setting`` (and ``kernel_convolutions``, see ``choose_isa``) into ``environ`` (default: this
    process's environment) and return one line saying what was done, for the run's log. Call it before MindSpore
    runs its first CPU operator."""
    environ = os.environ if environ is None else environ
    if device_target != "CPU":
        return f"cpu_isa {setting}: not applied (device_target {device_target})"
    preset = next((name for name in ENV_VARIABLES if environ.get(name)), None)
    if preset:
        return f"cpu_isa {setting}: kept {preset}={environ[preset]} from the environment"
    flags = cpu_flags(cpuinfo)
    isa = choose_isa(setting, flags, kernel_convolutions)
    if isa is None:
        if setting == "native":
            reason = "native"
        elif SLOW_PATH_FLAG in flags:
            reason = "every convolution runs through the project's kernels, fastest uncapped"
        else:
            reason = f"no {SLOW_PATH_FLAG} on this CPU"
        return f"cpu_isa {setting}: oneDNN chooses its own instruction set ({reason})"
    environ["ONEDNN_MAX_CPU_ISA"] = isa
    why = (
        f" (this CPU has {SLOW_PATH_FLAG}: oneDNN's NCHW convolutions would take a reference path)"
        if setting == "auto"
        else ""
    )
    return f"cpu_isa {setting}: ONEDNN_MAX_CPU_ISA={isa}{why}"
