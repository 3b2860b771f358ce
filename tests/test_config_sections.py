"""Config in sections: each entry point takes its own sections' keys on the command line, --help grouped by section,
one-line errors for a key of another entry point or a typo, the one retired-keys table, and a config layer that
imports no head code."""

import os
import re
import subprocess
import sys

import pytest

from src.model_utils.cli import run_main
from src.model_utils.config import (
    ENTRIES,
    SECTIONS,
    ConfigError,
    entry_keys,
    load_config,
    load_schema,
    load_yaml,
    retired_table,
)
from tests.test_import_direction import strings_in

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "sphereface_config.yaml")
IMPORT_STRING = re.compile(r"^[\w.]+:\w+$")


def test_every_key_has_a_valid_section_and_an_entry_point():
    schema = load_schema()
    assert {key: spec["section"] for key, spec in schema.items() if spec.get("section") not in SECTIONS} == {}
    for name, entry in ENTRIES.items():
        assert set(entry["sections"]) <= set(SECTIONS), name
        assert set(entry.get("keys", ())) <= set(schema), name
    specific = [name for name, entry in ENTRIES.items() if tuple(entry["sections"]) != SECTIONS]
    taken = {key for name in specific for key in entry_keys(schema, name)}
    assert set(schema) - taken == set()


def test_the_schema_names_no_code_and_the_loader_imports_no_head():
    assert [
        text
        for text in strings_in(load_yaml(os.path.join(ROOT, "src/model_utils/config_schema.yaml")))
        if IMPORT_STRING.match(text)
    ] == []
    code = (
        "import sys; from src.model_utils.config import load_config; "
        f"cfg = load_config(['--config_path', {RECIPE!r}]); print(cfg.head['type'], 'src.heads' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["asoftmax", "False"]


def test_the_recipe_serves_every_entry_point():
    for entry in ENTRIES:
        assert load_config(["--config_path", RECIPE], entry=entry).backbone == "sphere20a"


def test_a_key_of_another_entry_point_stops_train_with_one_line(capsys):
    import train

    assert run_main(lambda: train.main(["--config_path", RECIPE, "--file_format=ONNX"])) == 2
    captured = capsys.readouterr()
    assert (
        captured.err == "error: file_format is an export.py key; train.py does not use it (a config file may hold it)\n"
    )
    with pytest.raises(ConfigError, match=r"^ckpt_file is a key of eval.py, export.py and infer.py; train.py does not"):
        load_config(["--ckpt_file", "a.ckpt"], entry="train")
    with pytest.raises(ConfigError, match=r"^head is a train.py key; eval.py does not use it"):
        load_config(["--head.s=30"], entry="eval")


def test_each_entry_point_takes_its_own_keys():
    cfg = load_config(["--config_path", RECIPE, "--file_format=ONNX", "--ckpt_file=a.ckpt"], entry="export")
    assert (cfg.file_format, cfg.ckpt_file) == ("ONNX", "a.ckpt")
    assert load_config(["--config_path", RECIPE, "--fusion", "sum"], entry="eval").fusion == "sum"


def test_a_typo_gets_did_you_mean_in_one_line(capsys):
    with pytest.raises(ConfigError, match=r"^unknown option --bath_size; did you mean --batch_size\?$"):
        load_config(["--bath_size=8"], entry="train")
    assert run_main(lambda: load_config(["--bath_size", "8"], entry="train")) == 2
    assert capsys.readouterr().err == "error: unknown option --bath_size; did you mean --batch_size?\n"


def test_help_lists_the_keys_by_section_with_one_default_each(capsys):
    with pytest.raises(SystemExit) as stop:
        load_config(["--help"], default_config=RECIPE, entry="train")
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    headings = re.findall(r"(\w+) keys:", text)
    assert headings == ["device", "data", "model", "head", "optimisation", "checkpoints", "validation"]
    assert text.count("(default: ") == len(entry_keys(load_schema(), "train")) + 1  # + --config_path
    assert "(default: None)" not in text and f"(default: {RECIPE})" in text
    assert "--lr FLOAT base learning rate (after warmup) (default: 0.1) --momentum" in text
    assert "--file_format" not in text


def test_the_retired_table_is_the_one_place():
    assert set(retired_table()) & set(load_schema()) == set()
    assert "_retired" not in load_yaml(os.path.join(ROOT, "src/model_utils/config_schema.yaml"))


@pytest.mark.parametrize(
    "old, new",
    [
        ("--prelu_kernel=elementwise", "off"),
        ("--depthwise_kernel=native", "off"),
        ("--conv_kernel=cpu_aot", "auto"),
        ("--batchnorm_kernel=auto", "auto"),
    ],
)
def test_a_retired_kernel_key_is_read_as_cpu_kernels(old, new, caplog):
    assert load_config([old], entry="train").cpu_kernels == new
    key = old[2:].split("=")[0]
    assert f"config key '{key}' in the command line: retired, read as 'cpu_kernels: {new}'" in caplog.text


def test_kernel_keys_in_a_file_and_their_conflicts(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("prelu_kernel: native\ndepthwise_kernel: native\n", encoding="utf-8")
    assert load_config(["--config_path", str(path)], entry="eval").cpu_kernels == "off"
    assert load_config(["--config_path", str(path), "--cpu_kernels=auto"], entry="eval").cpu_kernels == "auto"
    path.write_text("prelu_kernel: native\nconv_kernel: cpu_aot\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"'conv_kernel' .* means 'cpu_kernels: auto', but 'prelu_kernel' means 'cpu_kernels: off'"
    ):
        load_config(["--config_path", str(path)])
    with pytest.raises(ConfigError, match=r"^cpu_kernels is a key of train.py, eval.py and infer.py; export.py does"):
        load_config(["--prelu_kernel=native"], entry="export")


def test_retired_pair_set_keys_become_one_val_targets_item(tmp_path, caplog):
    path = tmp_path / "old.yaml"
    path.write_text(
        "eval_pairs: pairs.txt\neval_root: lfw/images\neval_landmarks: lfw/landmarks.txt\neval_image_ext: .png\n",
        encoding="utf-8",
    )
    cfg = load_config(["--config_path", str(path)], entry="eval")
    assert cfg.val_targets == [
        {
            "name": None,
            "pairs": "pairs.txt",
            "format": "auto",
            "root": "lfw/images",
            "landmarks": "lfw/landmarks.txt",
            "image_ext": ".png",
            "fit": "template",
        }
    ]
    assert (
        "retired, read as 'val_targets: [{pairs: pairs.txt, root: lfw/images, landmarks: lfw/landmarks.txt, "
        "image_ext: .png}]'" in caplog.text
    )
    cfg = load_config(["--val_pairs", "dev.txt", "--eval_root=images"], entry="train")
    assert [(t["pairs"], t["root"]) for t in cfg.val_targets] == [("dev.txt", "images")]


def test_retired_keys_without_a_translation_stop_with_the_new_form(tmp_path):
    (tmp_path / "old.yaml").write_text("margin_s: 30\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape("write 'val_targets: [{pairs: PAIRS, root: images}]'")):
        load_config(["--eval_root=images"], entry="eval")
    with pytest.raises(ConfigError, match=re.escape("write 'lr_milestones: [100]' instead")):
        load_config(["--lr_steps=[100]"], entry="train")
    with pytest.raises(ConfigError, match=re.escape("'head: {type: <name>, s: 30}' (command line: --head.s=30)")):
        load_config(["--config_path", str(tmp_path / "old.yaml")], entry="train")
