"""The config loader: YAML + CLI overrides, unknown keys and wrong types rejected naming the key."""

import os
import re

import pytest

from src.heads import margin_parameters
from src.model_utils.config import ConfigError, load_config, load_schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAD = {"head": margin_parameters}


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_every_key_has_type_default_and_help():
    for key, spec in load_schema().items():
        assert {"type", "default", "help"} <= set(spec), key
        assert spec["help"].strip(), key


def test_shipped_configs_load():
    for name in ["sphereface_config.yaml"] + [
        os.path.join("configs", f) for f in os.listdir(os.path.join(ROOT, "configs"))
    ]:
        cfg = load_config(["--config_path", os.path.join(ROOT, name)])
        assert cfg.backbone and cfg.head


def test_sphereface_recipe_values():
    cfg = load_config(["--config_path", os.path.join(ROOT, "sphereface_config.yaml")])
    assert (cfg.backbone, cfg.head["type"], cfg.head["m"], cfg.num_classes) == ("sphere20a", "asoftmax", 4, 10572)
    assert (cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay) == (256, 0.1, 0.9, 0.0005)
    assert (cfg.max_steps, cfg.lr_milestones, cfg.image_size) == (28000, [16000, 24000], [112, 96])


def test_cli_beats_yaml_beats_default(tmp_path):
    path = write(tmp_path, "lr: 0.5\nbatch_size: 8\n")
    cfg = load_config(["--config_path", path, "--lr=0.01", "--image_size=[112,112]", "--head", "{type: cosface}"])
    assert cfg.lr == 0.01 and cfg.batch_size == 8 and cfg.image_size == [112, 112] and cfg.head["type"] == "cosface"
    assert load_config(["--config_path", path]).lr == 0.5
    assert load_config([]).lr == load_schema()["lr"]["default"]


def test_base_config_is_overridden_by_the_file_and_the_cli(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "base.yaml").write_text("lr: 0.5\nbatch_size: 8\nhead: {type: linear}\n")
    (tmp_path / "recipes" / "mid.yaml").write_text("base_config: ../base.yaml\nbatch_size: 16\n")
    child = tmp_path / "recipes" / "child.yaml"
    child.write_text("base_config: mid.yaml\nhead: {type: cosface, s: 30}\n")
    cfg = load_config(["--config_path", str(child), "--lr=0.01"])
    assert (cfg.lr, cfg.batch_size, cfg.head["type"], cfg.head["s"]) == (0.01, 16, "cosface", 30.0)
    assert cfg.config_path == str(child)


def test_base_config_errors_name_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("base_config: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base_config: a.yaml\n")
    with pytest.raises(ConfigError, match="base_config cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_config(["--config_path", str(tmp_path / "a.yaml")])
    (tmp_path / "c.yaml").write_text("base_config: missing.yaml\n")
    with pytest.raises(ConfigError, match="config file not found: .*missing.yaml"):
        load_config(["--config_path", str(tmp_path / "c.yaml")])
    (tmp_path / "d.yaml").write_text("base_config: [a.yaml]\n")
    with pytest.raises(ConfigError, match="d.yaml: base_config must be a file path"):
        load_config(["--config_path", str(tmp_path / "d.yaml")])
    (tmp_path / "e.yaml").write_text("learning_rate: 1\n")
    (tmp_path / "f.yaml").write_text("base_config: e.yaml\n")
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate' in .*e.yaml"):
        load_config(["--config_path", str(tmp_path / "f.yaml")])


def test_unknown_yaml_key_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate'"):
        load_config(["--config_path", write(tmp_path, "learning_rate: 0.1\n")])


def test_unknown_cli_key_names_the_key():
    with pytest.raises(ConfigError, match="^unknown option --learning_rate; see --help$"):
        load_config(["--learning_rate=0.1"])


@pytest.mark.parametrize(
    "text,key",
    [
        ("batch_size: 1.5\n", "batch_size"),
        ("lr: fast\n", "lr"),
        ("random_flip: 3\n", "random_flip"),
        ("image_size: [112]\n", "image_size"),
        ("head: 7\n", "head"),
        ("head: {type: cosface, m: x}\n", "head.m"),
        ("mode: FAST\n", "mode"),
        ("batch_size: 0\n", "batch_size"),
        ("image_size: 112\n", "image_size"),
        ("epochs: true\n", "epochs"),
    ],
)
def test_wrong_type_names_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(["--config_path", write(tmp_path, text)], block_variants=HEAD)


def test_wrong_cli_type_names_the_key():
    with pytest.raises(ConfigError, match="'lr'"):
        load_config(["--lr=abc"])


def test_string_keys_keep_cli_text():
    assert load_config(["--output_dir=2024"]).output_dir == "2024"


def test_missing_and_malformed_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(["--config_path", str(tmp_path / "none.yaml")])
    with pytest.raises(ConfigError, match="mapping"):
        load_config(["--config_path", write(tmp_path, "- a\n- b\n")])


def test_yaml_is_loaded_safely(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(["--config_path", write(tmp_path, "lr: !!python/object/apply:os.system ['true']\n")])


def test_head_block_defaults_and_sub_keys_checked_against_the_margin(tmp_path):
    cfg = load_config(block_variants=HEAD, argv=["--config_path", write(tmp_path, "head: {type: arcface, m: 0.3}\n")])
    assert cfg.head == {
        "type": "arcface",
        "s": 64.0,
        "m": 0.3,
        "easy_margin": False,
        "sharded": False,
        "sample_rate": 1.0,
    }
    assert isinstance(load_config(block_variants=HEAD, argv=["--head={type: cosface, s: 30}"]).head["s"], float)
    for text, message in [
        (
            "head: {type: normface, m: 0.3}\n",
            "unknown config key 'head.m': the head of type 'normface' takes type, sharded, sample_rate, s",
        ),
        ("head: {type: arcface, s: fast}\n", "config key 'head.s': expected float, got str"),
        ("head: {type: spherefacer, magn_type: v9}\n", "config key 'head.magn_type': 'v9' is not one"),
        ("head: {type: nope}\n", "config key 'head.type': unknown head 'nope'; available: adaface"),
        ("head: {s: 30}\n", "config key 'head.type' is required"),
        ("head: [arcface]\n", "config key 'head': expected a block"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(block_variants=HEAD, argv=["--config_path", write(tmp_path, text)])


def test_head_block_on_the_command_line(tmp_path):
    path = write(tmp_path, "head: {type: arcface, s: 30, easy_margin: true}\n")
    assert load_config(block_variants=HEAD, argv=["--config_path", path, "--head.m=0.3"]).head == {
        "type": "arcface",
        "s": 30.0,
        "m": 0.3,
        "easy_margin": True,
        "sharded": False,
        "sample_rate": 1.0,
    }
    # --head.type starts a new block: the file's arcface sub-keys (easy_margin) do not carry over to cosface
    cfg = load_config(block_variants=HEAD, argv=["--config_path", path, "--head.type=cosface", "--head.sharded=true"])
    assert cfg.head == {"type": "cosface", "s": 64.0, "m": 0.35, "sharded": True, "sample_rate": 1.0}
    normface = load_config(block_variants=HEAD, argv=["--config_path", path, "--head={type: normface}"])
    assert normface.head["type"] == "normface"
    with pytest.raises(ConfigError, match=re.escape("config key 'head.s': expected float, got str 'abc'")):
        load_config(block_variants=HEAD, argv=["--config_path", path, "--head.s=abc"])
    with pytest.raises(ConfigError, match=re.escape("unknown config key 'head.h': the head of type 'arcface'")):
        load_config(block_variants=HEAD, argv=["--config_path", path, "--head.h=0.3"])


def test_retired_flat_head_keys_are_read_into_the_block_or_show_its_form(tmp_path, caplog):
    with pytest.raises(
        ConfigError,
        match=re.escape("config key 'margin_s' in")
        + ".* is retired: .*"
        + re.escape("'head: {type: <name>, s: 30}' (command line: --head.s=30)"),
    ):
        load_config(["--config_path", write(tmp_path, "margin_s: 30\n")])
    path = write(tmp_path, "head: {type: arcface}\nmargin_s: 30\neasy_margin: true\n")
    head = load_config(["--config_path", path], block_variants=HEAD).head
    assert (head["type"], head["s"], head["easy_margin"]) == ("arcface", 30.0, True)
    assert "read as 'head: {..., s: 30}'" in caplog.text
    cli = load_config(["--config_path", path, "--margin_m", "0.3"], block_variants=HEAD)
    assert (cli.head["s"], cli.head["m"]) == (30.0, 0.3)
    assert "config key 'margin_m' in the command line: retired, read as '--head.m=0.3'" in caplog.text
    with pytest.raises(ConfigError, match=re.escape("unknown config key 'head.base': the head of type 'arcface'")):
        load_config(["--config_path", path, "--asoftmax_base=900"], block_variants=HEAD)
    with pytest.raises(ConfigError, match="'margin_s' in .* is retired and means 'head.s: 30', but the head block"):
        load_config(["--config_path", write(tmp_path, "head: {type: cosface, s: 64}\nmargin_s: 30\n")])
    with pytest.raises(
        ConfigError,
        match=re.escape("config key 'head': expected a block, got the string 'arcface'; write 'head: {type: arcface}'"),
    ):
        load_config(["--config_path", write(tmp_path, "head: arcface\n")])


def test_head_from_config_gets_the_margin_parameters():
    from src.heads import build_head_from_config

    head = build_head_from_config(load_config(["--head={type: arcface, m: 0.3}", "--embedding_size=8"]), 10, 4)
    assert (head.margin.m, head.margin.s, head.centres.weight.shape) == (0.3, 64.0, (10, 8))
    with pytest.raises(ConfigError, match="'head.sample_rate' needs sharded centres"):
        build_head_from_config(load_config(["--head={type: cosface, sample_rate: 0.5}"]), 10, 4)
    with pytest.raises(ConfigError, match="'head.sharded': head 'linear' has unnormalised centres"):
        build_head_from_config(load_config(["--head={type: linear, sharded: true}"]), 10, 4)
