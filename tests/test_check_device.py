"""tools/check_device.py: on this machine's CPU every check passes (exit 0); a failed check exits 1 naming it."""

import subprocess

import pytest
from tiny_training import PYTHON, ROOT

from tools import check_device


@pytest.mark.slow
def test_cpu_passes_every_check():
    process = subprocess.run(
        [PYTHON, f"{ROOT}/tools/check_device.py", "--device_target", "CPU"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout + process.stderr[-3000:]
    for line in ("MindSpore 2.1", "training step on CPU", "AllReduce across 2 CPU devices (msrun): ok", "CPU ready"):
        assert line in process.stdout


def test_a_version_mismatch_exits_1_naming_it(monkeypatch, capsys):
    monkeypatch.setattr(check_device, "MINDSPORE", "9.9")
    assert check_device.main(["--device_target", "CPU"]) == 1
    err = capsys.readouterr().err
    assert "check_device: FAILED: MindSpore 2.10" in err and "this package needs 9.9" in err


def test_cann_and_cuda_versions_are_read_as_mindspore_reads_them(tmp_path, monkeypatch):
    (tmp_path / "compiler").mkdir()
    (tmp_path / "compiler" / "version.info").write_text("Version=8.3.RC1\nversion_dir=8.3\n")
    monkeypatch.setenv("ASCEND_HOME_PATH", str(tmp_path))
    rows = {what: (found, fits) for what, found, _, fits in check_device.versions("Ascend")}
    assert rows["CANN"] == ("8.3.RC1", True)
    (tmp_path / "compiler" / "version.info").write_text("Version=7.0.0\n")
    assert check_device.versions("Ascend")[1][1:] == ("7.0.0", ", ".join(check_device.CANN), False)
