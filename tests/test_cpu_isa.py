"""cpu_isa: which oneDNN instruction set cap each CPU gets, that it reaches the environment before the first
operator (and msrun workers), that GPU/Ascend runs and a user's own cap are left alone, and that training gives
the same numbers both ways."""

import os
import subprocess

import numpy as np
import pytest
from tiny_training import PYTHON, ROOT, digits_subset, load_params, tiny_args

from src.model_utils.config import ConfigError, load_config, load_schema
from src.model_utils.cpu_isa import CHOICES, ENV_VARIABLES, apply_cpu_isa, choose_isa, cpu_flags
from src.model_utils.device import describe_device, init_device
from tests.kernel_helpers import require_kernels

AVX512_FLAGS = {"sse4_1", "avx", "avx2", "avx512f", "avx512bw", "amx_tile"}
AVX2_FLAGS = {"sse4_1", "avx", "avx2", "fma"}


def write_cpuinfo(path, flags):
    path.write_text(
        "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: " + " ".join(sorted(flags)) + "\n\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    return str(path)


def test_cpu_flags_reads_the_first_processor(tmp_path):
    assert cpu_flags(write_cpuinfo(tmp_path / "cpuinfo", AVX2_FLAGS)) == AVX2_FLAGS
    assert cpu_flags(str(tmp_path / "absent")) == set()


@pytest.mark.parametrize(
    "setting, flags, expected",
    [
        ("auto", AVX512_FLAGS, "AVX2"),
        ("auto", AVX2_FLAGS, None),
        ("auto", set(), None),
        ("native", AVX512_FLAGS, None),
        ("avx2", AVX512_FLAGS, "AVX2"),
        ("avx512_core", AVX2_FLAGS, "AVX512_CORE"),
        ("avx512_core_amx", AVX512_FLAGS, "AVX512_CORE_AMX"),
        ("sse41", AVX2_FLAGS, "SSE41"),
    ],
)
def test_choose_isa(setting, flags, expected):
    assert choose_isa(setting, flags) == expected


@pytest.mark.parametrize(
    "setting, flags, expected",
    [("auto", AVX512_FLAGS, None), ("auto", AVX2_FLAGS, None), ("avx2", AVX512_FLAGS, "AVX2"), ("native", set(), None)],
)
def test_choose_isa_when_every_convolution_goes_through_the_kernels(setting, flags, expected):
    """auto leaves an AVX-512 CPU uncapped when the run has no MindSpore NCHW convolution; an explicit cap stays."""
    assert choose_isa(setting, flags, kernel_convolutions=True) == expected


def test_choose_isa_refuses_an_unknown_value():
    with pytest.raises(ValueError, match="avx9"):
        choose_isa("avx9", AVX2_FLAGS)


def test_schema_offers_exactly_the_known_values():
    assert tuple(load_schema()["cpu_isa"]["choices"]) == CHOICES
    assert load_config([]).cpu_isa == "auto"
    with pytest.raises(ConfigError, match="cpu_isa"):
        load_config(["--cpu_isa=avx9"])


def test_apply_sets_the_cap_on_an_avx512_cpu(tmp_path):
    environ = {}
    line = apply_cpu_isa("auto", "CPU", environ, write_cpuinfo(tmp_path / "cpuinfo", AVX512_FLAGS))
    assert environ == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in line and "avx512f" in line


def test_apply_leaves_an_avx512_cpu_uncapped_for_kernel_convolutions(tmp_path):
    environ = {}
    cpuinfo = write_cpuinfo(tmp_path / "cpuinfo", AVX512_FLAGS)
    line = apply_cpu_isa("auto", "CPU", environ, cpuinfo, kernel_convolutions=True)
    assert environ == {} and "every convolution runs through the project's kernels" in line


def test_apply_leaves_other_cpus_and_native_alone(tmp_path):
    environ = {}
    assert "no avx512f" in apply_cpu_isa("auto", "CPU", environ, write_cpuinfo(tmp_path / "c1", AVX2_FLAGS))
    assert "native" in apply_cpu_isa("native", "CPU", environ, write_cpuinfo(tmp_path / "c2", AVX512_FLAGS))
    assert environ == {}


@pytest.mark.parametrize("device_target", ["GPU", "Ascend"])
def test_apply_does_not_touch_gpu_or_ascend_runs(tmp_path, device_target):
    environ = {}
    line = apply_cpu_isa("avx2", device_target, environ, write_cpuinfo(tmp_path / "cpuinfo", AVX512_FLAGS))
    assert environ == {} and device_target in line


@pytest.mark.parametrize("name", ENV_VARIABLES)
def test_a_cap_from_the_environment_is_kept(tmp_path, name):
    environ = {name: "AVX512_CORE"}
    line = apply_cpu_isa("auto", "CPU", environ, write_cpuinfo(tmp_path / "cpuinfo", AVX512_FLAGS))
    assert environ == {name: "AVX512_CORE"} and f"kept {name}=AVX512_CORE" in line


def test_describe_device_says_what_cpu_isa_did():
    """The line of the process's first init_device (here: the test session's, whose cap comes from conftest.py)."""
    cfg = load_config(["--device_target=CPU"])
    init_device(cfg)
    line = describe_device(cfg)
    assert line.startswith("device CPU GRAPH, 2 operator threads, cpu_isa auto: ")
    if any(os.environ.get(name) for name in ENV_VARIABLES):
        assert "kept ONEDNN_MAX_CPU_ISA=" in line or "ONEDNN_MAX_CPU_ISA=AVX2" in line
    assert describe_device(load_config(["--device_target=GPU"])) == "device GPU GRAPH"


def clean_environment():
    return {k: v for k, v in os.environ.items() if k not in ENV_VARIABLES}


def test_entry_point_caps_before_the_first_operator(tmp_path):
    """A fresh process that sets the cap through init_device (as train.py, eval.py, export.py, infer.py and every
    msrun worker do) runs its convolutions on the path oneDNN's verbose log names for that cap."""
    script = tmp_path / "conv.py"
    script.write_text(
        "import sys\nimport numpy as np\nimport mindspore as ms\nfrom mindspore import nn\n"
        "from src.model_utils.config import load_config\nfrom src.model_utils.device import init_device\n"
        "init_device(load_config(['--device_target=CPU', '--cpu_isa=' + sys.argv[1]]))\n"
        "conv = nn.Conv2d(16, 32, 3, pad_mode='pad', padding=1, weight_init='normal')\n"
        "conv(ms.Tensor(np.ones((2, 16, 14, 12), np.float32))).asnumpy()\n"
    )
    env = dict(clean_environment(), ONEDNN_VERBOSE="1", PYTHONPATH=ROOT)
    out = subprocess.run(
        [PYTHON, str(script), "avx2"], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    ).stdout
    executions = [line.split(",") for line in out.splitlines() if ",exec,cpu,convolution," in line]
    assert executions, "oneDNN logged no convolution"
    assert all("ref" not in fields[6] for fields in executions), executions
    assert "info,cpu,isa:Intel AVX2\n" in out


def test_kernel_convolutions_run_uncapped_on_the_jit_path(tmp_path):
    """A fresh process set up as train.py does for a sphere network (every convolution through the project's
    kernel): on an AVX-512 CPU no cap is set, and oneDNN runs the kernel's blocked-layout convolutions, forward and
    backward, on a JIT path at the CPU's own instruction set, not the reference path."""
    require_kernels()
    script = tmp_path / "kernel_conv.py"
    script.write_text(
        "import numpy as np\nimport mindspore as ms\nfrom tests.kernel_helpers import value_and_grads\n"
        "from src.model_utils.config import load_config\nfrom src.model_utils.device import init_device\n"
        "from src.kernels.accelerate import accelerate, kernels_enabled\n"
        "from src.network import build_backbone_from_config\n"
        "cfg = load_config(['--backbone=sphere4', '--backbone_width=0.25', '--embedding_size=16',"
        " '--image_size=[32,32]'])\n"
        "init_device(cfg, kernels_enabled(cfg.cpu_kernels, cfg.device_target))\n"
        "net = accelerate(build_backbone_from_config(cfg), cfg.cpu_kernels, cfg.device_target)\n"
        "value_and_grads(net, ms.Tensor(np.ones((2, 3, 32, 32), np.float32)))\n"
    )
    env = dict(clean_environment(), ONEDNN_VERBOSE="1", PYTHONPATH=ROOT)
    out = subprocess.run([PYTHON, str(script)], capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout
    executions = [line.split(",") for line in out.splitlines() if ",exec,cpu,convolution," in line]
    assert {fields[7] for fields in executions} >= {"forward_training", "backward_data", "backward_weights"}, out
    assert all("ref" not in fields[6] for fields in executions), executions
    if "avx512f" in cpu_flags():
        assert "info,cpu,isa:Intel AVX-512" in out and "AVX2\n" not in out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return digits_subset(str(tmp_path_factory.mktemp("digits")))


@pytest.mark.slow
def test_training_is_the_same_both_ways(data, tmp_path):
    """Three steps of train.py with oneDNN capped at AVX2 and with oneDNN's own choice (on an AVX-512 CPU the
    slow reference path): the same weights up to float rounding."""
    if "avx512f" not in cpu_flags():
        pytest.skip("this CPU has no avx512f: capped at AVX2 and oneDNN's own choice are the same instruction set")
    finals = []
    for isa in ("avx2", "native"):
        output = tmp_path / isa
        args = tiny_args(
            data, str(output), max_steps=3, save_interval=3, cpu_isa=isa, num_threads=1, list_format="plain"
        )
        subprocess.run(
            [PYTHON, os.path.join(ROOT, "train.py"), *args],
            check=True,
            capture_output=True,
            env=clean_environment(),
            cwd=ROOT,
        )
        log = (output / "log_rank0.txt").read_text()
        assert f"cpu_isa {isa}: " in log, log
        finals.append(load_params(str(output / "checkpoints" / "step_00000003.ckpt")))
    first, second = finals
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_allclose(first[name], second[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_the_test_session_itself_runs_capped_where_it_must():
    """conftest.py applies cpu_isa auto before MindSpore's first operator, so the suite runs on the fast path."""
    if choose_isa("auto", cpu_flags()) is None:
        pytest.skip("this CPU has no avx512f: cpu_isa auto sets no cap")
    assert any(os.environ.get(name) for name in ENV_VARIABLES)


def test_evaluation_goes_uncapped_only_for_checkpoints(tmp_path):
    """eval.py's decision: every model a checkpoint, run through the kernels; a MINDIR (MindSpore's own
    convolutions), a folder without checkpoints, a missing file or cpu_kernels off keep the cap."""
    require_kernels()
    import mindspore as ms

    from src.eval.evaluation import checkpoints_through_kernels

    (tmp_path / "model.ckpt").write_bytes(b"")
    ms.export(
        ms.nn.Dense(2, 2),
        ms.Tensor(np.ones((1, 2), np.float32)),
        file_name=str(tmp_path / "model"),
        file_format="MINDIR",
    )
    (tmp_path / "empty").mkdir()
    args = ["--backbone=sphere10", "--embedding_size=16", "--image_size=[32,32]"]
    assert checkpoints_through_kernels(load_config(args + [f"--ckpt_file={tmp_path / 'model.ckpt'}"])) is True
    assert checkpoints_through_kernels(load_config(args + [f"--ckpt_file={tmp_path}"])) is True
    for path in (tmp_path / "model.mindir", tmp_path / "empty", tmp_path / "absent.ckpt"):
        assert checkpoints_through_kernels(load_config(args + [f"--ckpt_file={path}"])) is False
    native = args + ["--cpu_kernels=off", f"--ckpt_file={tmp_path / 'model.ckpt'}"]
    assert checkpoints_through_kernels(load_config(native)) is False
