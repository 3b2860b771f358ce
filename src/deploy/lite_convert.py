"""An exported ONNX embedding network -> a MindSpore Lite MINDIR (``tools/to_lite.py`` is its command line).

MindSpore Lite 2.0 cannot read the MINDIR that MindSpore 2.10 exports (MindIR version 3, Lite 2.0 reads
up to 1), so the deployable model goes through ONNX (``mindspore.onnx.export``) in two steps:

1. Here, with the ``onnx`` package, the fixed ONNX (a temporary file unless ``--fixed-onnx`` is given,
   checked with ``onnx.checker``):
   - MindSpore's ONNX export feeds each PReLU its slope through an ``Unsqueeze`` of the (C,) slope
     parameter, which Lite 2.0's ONNX parser rejects ("parse node PRelu failed"). Each such Unsqueeze of
     a constant is folded into a (C, 1, 1) initializer.
   - A dynamic batch (``Tensor(shape=[None, 3, H, W])`` at export) comes out as ``dim_value: -1``; it is
     rewritten as the ONNX way of saying so, ``dim_param: "batch"``. Lite 2.0 converts such a model, but
     its CPU PReLU kernel cannot be prepared before the batch is known ("slope_shapes: C is not equal to
     1 or input_channel: -1", so ``Model::Build`` fails). In a model with a dynamic dimension each
     ``PRelu(x, slope)`` is therefore rewritten as ``Relu(x) + slope * Min(x, 0)``, which builds and
     resizes (sphere20a at batch 64 then takes about a quarter more CPU time than with PRelu, so export
     a fixed batch where speed matters). A fixed-batch model keeps the PRelu nodes.
2. In a subprocess under Python 3.7: Lite 2.0's converter, ``mindspore_lite.Converter().convert(
   fmk_type=FmkType.ONNX, ...)`` with ``save_type=ModelType.MINDIR`` and ``optimize`` for the target device:
   ``general`` for CPU and GPU, ``ascend_oriented`` for Ascend (the model then runs on Ascend only, as Lite's
   documentation recommends). Ascend inference (the 310) takes static shapes only, so a dynamic-batch model
   is refused for Ascend: export a fixed batch (``export.py --export_batch_size N``). The only mindspore-lite wheel on
   PyPI (2.0.0) is built for CPython 3.7, so it runs from the wheel unpacked by ``tools/fetch_lite.sh``
   (its parent folder on PYTHONPATH, its ``lib/`` on LD_LIBRARY_PATH) under a Python 3.7 interpreter:
   ``--python37``, else ``python3.7`` on PATH, else the newest ``$PYENV_ROOT/versions/3.7*`` (PYENV_ROOT
   defaults to ~/.pyenv). The converter imports numpy; when that interpreter has none, numpy<1.22 (the
   last line with CPython 3.7 wheels) is installed with its pip into ``--py37-deps`` (default: a
   ``py37-site-packages`` folder beside the unpacked wheel), never into the interpreter itself.

When export.py's sidecar ``MODEL.onnx.json`` exists it is copied to ``OUTPUT.mindir.json`` with
``file_format: MINDIR_LITE``, so the preprocessing stays with the Lite model.

The Lite folder is ``--lite-home``, else $MINDSPORE_LITE_HOME, else $MS_LITE_HOME: the ``mindspore_lite``
folder that ``tools/fetch_lite.sh`` prints. The output is the Lite MINDIR that
``mindspore::Model::Build(path, kMindIR, context)`` loads (see ascend310_infer/).
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from src.deploy.onnx_graph import fix_onnx, has_dynamic_input

NUMPY_FOR_PY37 = "numpy>=1.17,<1.22"
OPTIMIZE = {"CPU": "general", "GPU": "general", "Ascend": "ascend_oriented"}

# Runs under Python 3.7 with the unpacked wheel on PYTHONPATH: argv = fixed ONNX, output path without
# the ".mindir" suffix, which the converter appends itself, optimize.
CONVERT_SCRIPT = """
import sys
import mindspore_lite as mslite
converter = mslite.Converter()
converter.save_type = mslite.ModelType.MINDIR
converter.optimize = sys.argv[3]
converter.convert(fmk_type=mslite.FmkType.ONNX, model_file=sys.argv[1], output_file=sys.argv[2])
"""


class ConversionError(RuntimeError):
    """A step of the conversion could not be done; the message says what is needed."""


def find_lite_home(explicit=None):
    """The unpacked wheel's mindspore_lite folder, from the argument or the environment."""
    lite_home = explicit or os.environ.get("MINDSPORE_LITE_HOME") or os.environ.get("MS_LITE_HOME")
    if not lite_home:
        raise ConversionError(
            "MindSpore Lite not found: pass --lite-home or set MINDSPORE_LITE_HOME to the mindspore_lite folder "
            'of the unpacked wheel, e.g.\n  export MINDSPORE_LITE_HOME="$(tools/fetch_lite.sh | tail -n 1)"'
        )
    lite_home = os.path.abspath(lite_home)
    if not os.path.isfile(os.path.join(lite_home, "converter.py")):
        raise ConversionError(
            f"{lite_home} is not the mindspore_lite folder of the unpacked mindspore-lite wheel (no converter.py); "
            "the converter's Python API comes from that wheel: run tools/fetch_lite.sh"
        )
    return lite_home


def _is_python37(executable):
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print(sys.version_info[:2] == (3, 7))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == "True"


def find_python37(explicit=None):
    """A Python 3.7 interpreter: the argument, else python3.7 on PATH, else the newest pyenv 3.7.x."""
    if explicit:
        if not _is_python37(explicit):
            raise ConversionError(f"--python37 {explicit} is not a working Python 3.7 interpreter")
        return explicit
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    pyenv_versions = sorted(
        glob.glob(os.path.join(pyenv_root, "versions", "3.7*", "bin", "python3.7")),
        key=lambda path: [int(n) for n in re.findall(r"\d+", path.split(os.sep)[-3])],
        reverse=True,
    )
    candidates = [shutil.which("python3.7")] + pyenv_versions
    for candidate in candidates:
        if candidate and _is_python37(candidate):
            return candidate
    raise ConversionError(
        "Converting needs a Python 3.7 interpreter: the only mindspore-lite wheel on PyPI (2.0.0) is built for "
        f"CPython 3.7. None was found (python3.7 on PATH, {pyenv_root}/versions/3.7*). Install one, e.g. "
        "`pyenv install 3.7.16`, or pass --python37 /path/to/python3.7."
    )


def _py37_env(lite_home, deps_dir):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(lite_home), deps_dir])
    # The Python binding finds its own libraries through its RPATH ($ORIGIN); lib/ also goes on
    # LD_LIBRARY_PATH for the libraries in it that have none and are loaded at run time.
    lib_dir = os.path.join(lite_home, "lib")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [lib_dir, os.environ.get("LD_LIBRARY_PATH")] if p)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def ensure_numpy(python37, lite_home, deps_dir):
    """Make numpy importable for ``python37`` with ``deps_dir`` on its path, installing it there if needed."""
    env = _py37_env(lite_home, deps_dir)
    check = [python37, "-c", "import numpy"]
    if subprocess.run(check, env=env, capture_output=True, check=False).returncode == 0:
        return
    print(
        f"Installing {NUMPY_FOR_PY37} for {python37} into {deps_dir} (the Lite converter imports numpy)",
        file=sys.stderr,
    )
    os.makedirs(deps_dir, exist_ok=True)
    install = subprocess.run(
        [python37, "-m", "pip", "install", "--disable-pip-version-check", "--target", deps_dir, NUMPY_FOR_PY37],
        capture_output=True,
        text=True,
        check=False,
    )
    if install.returncode != 0 or subprocess.run(check, env=env, capture_output=True, check=False).returncode != 0:
        raise ConversionError(
            f"could not install {NUMPY_FOR_PY37} for {python37} into {deps_dir}:\n{install.stdout}{install.stderr}"
        )


def convert_with_lite(fixed_onnx, output_path, lite_home, python37, deps_dir, optimize="general"):
    """Run Lite 2.0's converter on ``fixed_onnx`` under ``python37``, writing ``output_path`` (.mindir)."""
    stem = output_path[: -len(".mindir")]
    if os.path.exists(output_path):
        os.remove(output_path)  # the converter writes 0400 files and does not replace them
    result = subprocess.run(
        [python37, "-c", CONVERT_SCRIPT, fixed_onnx, stem, optimize],
        env=_py37_env(lite_home, deps_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not os.path.isfile(output_path):
        raise ConversionError(f"the MindSpore Lite converter failed on {fixed_onnx}:\n{result.stdout}{result.stderr}")
    os.chmod(output_path, 0o644)


def check_static_for_ascend(onnx_path, device_target):
    """Ascend inference (the 310) rejects dynamic shapes: a dynamic-batch model stops here, saying what to do."""
    if device_target == "Ascend" and has_dynamic_input(onnx_path):
        raise ConversionError(
            f"{onnx_path} has a dynamic batch, which Ascend inference (the 310) does not run: export a fixed batch "
            "(export.py --export_batch_size N, without --dynamic_batch) and convert that"
        )


def to_lite(
    onnx_path, output_path, fixed_onnx=None, lite_home=None, python37=None, py37_deps=None, device_target="CPU"
):
    """ONNX -> fixed ONNX -> Lite MINDIR for ``device_target``. Returns (Unsqueeze nodes folded, PRelu nodes
    decomposed)."""
    if not output_path.endswith(".mindir"):
        raise ConversionError(f"the output must end in .mindir (the converter appends it itself): {output_path}")
    check_static_for_ascend(onnx_path, device_target)
    output_path = os.path.abspath(output_path)
    lite_home = find_lite_home(lite_home)
    python37 = find_python37(python37)
    deps_dir = os.path.abspath(py37_deps or os.path.join(os.path.dirname(lite_home), "py37-site-packages"))
    ensure_numpy(python37, lite_home, deps_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fixed = os.path.abspath(fixed_onnx or os.path.join(tmp, "fixed.onnx"))
        counts = fix_onnx(onnx_path, fixed)
        convert_with_lite(fixed, output_path, lite_home, python37, deps_dir, OPTIMIZE[device_target])
    copy_sidecar(onnx_path, output_path)
    return counts


def copy_sidecar(onnx_path, output_path):
    """Carry export.py's ``<model>.onnx.json`` (preprocessing, input shape, embedding size) over to
    ``<output>.mindir.json``, marked as a Lite model; nothing when the ONNX has no sidecar."""
    if not os.path.isfile(onnx_path + ".json"):
        return
    with open(onnx_path + ".json", encoding="utf-8") as f:
        record = json.load(f)
    record.pop("parity", None)  # it measured the ONNX file, not this one
    record.update(
        {
            "file_format": "MINDIR_LITE",
            "converted_from": os.path.basename(onnx_path),
            "converted_by": "MindSpore Lite 2.0.0 converter (tools/to_lite.py)",
        }
    )
    with open(output_path + ".json", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
