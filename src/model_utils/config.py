"""The one configuration loader: YAML file -> validated ``Config``, with ``--key=value`` CLI overrides.

Every key, its type, default and help text live in ``config_schema.yaml`` next to this file (configs are data).
A user YAML may set any subset of them; the command line beats the YAML, the YAML beats the schema default.
An unknown key or a value of the wrong type stops with an error naming the key.

A key of type ``block`` holds a mapping (``head: {type: arcface, s: 64}``): its sub-keys are the schema's
``fields`` plus, when the schema names a ``variants`` function (``module:function``), the parameters that
function declares for the block's ``type``; sub-keys are checked and defaulted like keys (errors name
``head.s``). On the command line ``--head='{type: cosface, s: 30}'`` replaces the block, ``--head.s=30`` sets
one sub-key of it and ``--head.type=cosface`` starts a new block of that type. Retired keys (the schema's
``_retired``: old key -> its place in a block) stop with an error showing the new form.
"""

import argparse
import difflib
import importlib
import math
import os
import re

import yaml

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config_schema.yaml")
RENAMED_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config_renamed.yaml")
# The entry points' --config_path when none is given: the SphereFace recipe at the top of the project.
DEFAULT_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "sphereface_config.yaml"
)
TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list}


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key."""


class Config(argparse.Namespace):
    """Attribute access to the validated keys; ``to_dict()`` for saving next to a run."""

    def to_dict(self):
        return dict(vars(self))


def load_yaml(path):
    """Read a YAML mapping with ``yaml.safe_load``; the error names the file."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of key: value")
    return data


def read_config_file(path, schema, chain=()):
    """The validated keys of a config file. A file may start from another with ``base_config: PATH`` (relative to
    its own folder); its keys then override the base's, bases may have bases, and a cycle is an error."""
    path = os.path.abspath(path)
    if path in chain:
        raise ConfigError(f"base_config cycle: {' -> '.join(chain + (path,))}")
    data = load_yaml(path)
    base = data.pop("base_config", None)
    values = {}
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: base_config must be a file path, got {base!r}")
        values = read_config_file(os.path.join(os.path.dirname(path), base), schema, chain + (path,))
    values.update(validate(data, schema, path))
    return values


def load_schema():
    """The schema's keys (the ``_retired`` table left out: see ``retired_keys``)."""
    schema = load_yaml(SCHEMA_PATH)
    schema.pop("_retired", None)
    return schema


def retired_keys():
    """{old key: 'block.sub_key'} of the keys replaced by a sub-key of a block."""
    return load_yaml(SCHEMA_PATH).get("_retired", {})


def retired_error(key, value, source):
    block, sub = retired_keys()[key].split(".")
    shown = "VALUE" if value is None else value
    return ConfigError(
        f"config key '{key}' in {source} is retired: the {block} is one block now, write "
        f"'{block}: {{type: <name>, {sub}: {shown}}}' (command line: --{block}.{sub}={shown})"
    )


def _variant_fields(key, spec, variant):
    module_name, function_name = spec["variants"].split(":")
    declared = getattr(importlib.import_module(module_name), function_name)
    try:
        return declared(variant)
    except KeyError as err:
        raise ConfigError(f"config key '{key}.type': {err.args[0]}") from err


def check_block(key, value, spec):
    """A ``block`` value: a mapping whose sub-keys are checked against the block's fields and its type's declared
    parameters, missing ones set to their defaults."""
    if isinstance(value, str):
        raise ConfigError(
            f"config key '{key}': expected a block, got the string {value!r}; write "
            f"'{key}: {{type: {value}}}' (command line: --{key}.type={value} or --{key}='{{type: {value}}}')"
        )
    if not isinstance(value, dict):
        raise ConfigError(
            f"config key '{key}': expected a block {{type: ..., ...}}, got {type(value).__name__} {value!r}"
        )
    fields = dict(spec["fields"])
    if "type" in fields:
        if "type" not in value:
            raise ConfigError(
                f"config key '{key}.type' is required: the block names its type, e.g. "
                f"'{key}: {{type: {fields['type']['default']}, ...}}'"
            )
        variant = check_value(f"{key}.type", value["type"], fields["type"])
        if "variants" in spec:
            fields.update(_variant_fields(key, spec, variant))
    out = {}
    for sub, sub_value in value.items():
        if sub not in fields:
            kind = f" of type '{value['type']}'" if "type" in fields else ""
            raise ConfigError(f"unknown config key '{key}.{sub}': the {key}{kind} takes {', '.join(fields)}")
        out[sub] = check_value(f"{key}.{sub}", sub_value, fields[sub])
    for sub, sub_spec in fields.items():
        out.setdefault(sub, sub_spec.get("default"))
    return out


def _check_scalar(key, value, type_name):
    expected = TYPES[type_name]
    if type_name == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type_name == "float" and isinstance(value, str):
        # PyYAML reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if type_name == "int" and isinstance(value, bool):
        raise ConfigError(f"config key '{key}': expected int, got bool {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"config key '{key}': expected {type_name}, got {type(value).__name__} {value!r}")
    return value


def _yaml_word(value, spec):
    """A str key whose choices include "off" (or "on") takes the bool YAML 1.1 reads from the bare word back as that
    word: ``cpu_kernels: off`` in a file means "off"."""
    if isinstance(value, bool) and spec["type"] == "str" and ("on" if value else "off") in spec.get("choices", ()):
        return "on" if value else "off"
    return value


def check_value(key, value, spec):
    """Return ``value`` converted to the schema type of ``key`` or raise ``ConfigError`` naming the key."""
    if value is None:
        if spec.get("nullable", False):
            return None
        raise ConfigError(f"config key '{key}': a value is required (null is not allowed)")
    type_name = spec["type"]
    if type_name == "list[map]":
        return _check_mappings(key, value, spec)
    if type_name == "block":
        return check_block(key, value, spec)
    if type_name.startswith("list"):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {type(value).__name__} {value!r}")
        item_type = type_name[5:-1] if "[" in type_name else None
        value = [_check_scalar(key, v, item_type) if item_type else v for v in value]
        length = spec.get("length")
        if length is not None and len(value) != length:
            raise ConfigError(f"config key '{key}': expected {length} items, got {len(value)}")
    else:
        value = _check_scalar(key, _yaml_word(value, spec), type_name)
    choices = spec.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"config key '{key}': {value!r} is not one of {choices}")
    if type_name in ("float", "list[float]") and spec.get("finite", True):
        items = value if isinstance(value, list) else [value]
        bad = [v for v in items if not math.isfinite(v)]
        if bad:
            raise ConfigError(f"config key '{key}': {bad[0]!r} is not a finite number")
    minimum = spec.get("min")
    if minimum is not None:
        items = value if isinstance(value, list) else [value]
        bad = [v for v in items if v < minimum]
        if bad:
            raise ConfigError(f"config key '{key}': {bad[0]!r} is below the minimum {minimum}")
    return value


def _check_mappings(key, value, spec):
    """A list of mappings whose fields are described by ``spec['fields']`` (each a spec of its own): every item
    validated, missing fields filled with their defaults. An item given as a string means ``{spec['shorthand']:
    item}`` (a string alone, a list of that one item). Errors name the item and field (``val_targets[1].format``)."""
    if isinstance(value, str) and spec.get("shorthand"):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"config key '{key}': expected a list of mappings, got {type(value).__name__} {value!r}")
    fields, items = spec["fields"], []
    for number, item in enumerate(value):
        where = f"{key}[{number}]"
        if isinstance(item, str) and spec.get("shorthand"):
            item = {spec["shorthand"]: item}
        if not isinstance(item, dict):
            raise ConfigError(
                f"config key '{where}': expected a mapping of {sorted(fields)}, got {type(item).__name__} {item!r}"
            )
        unknown = sorted(set(item) - set(fields))
        if unknown:
            raise ConfigError(f"config key '{where}.{unknown[0]}': unknown field; allowed: {sorted(fields)}")
        items.append(
            {
                name: check_value(f"{where}.{name}", item.get(name, field.get("default")), field)
                for name, field in fields.items()
            }
        )
    return items


def _parse_cli_value(key, text, spec):
    if spec.get("type") == "str" and text not in ("null", "~"):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"config key '{key}': cannot parse {text!r}: {err}") from err


def build_parser(schema, description=None, default_config=None):
    parser = argparse.ArgumentParser(
        description=description, allow_abbrev=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--config_path", default=default_config, help="YAML file with the run's settings")
    for key, spec in schema.items():
        # A key given alone means its schema's ``bare`` value (``--resume`` -> auto); a bool key alone means true.
        bare = spec.get("bare", "true" if spec["type"] == "bool" else None)
        flag = {"nargs": "?", "const": bare} if bare is not None else {}
        parser.add_argument(
            f"--{key}",
            default=None,
            metavar=spec["type"].upper(),
            **flag,
            help=f"{spec['help']} (default: {spec.get('default')!r})",
        )
    return parser


def unknown_key_error(key, value, schema, source):
    """The ``ConfigError`` for a key ``schema`` lacks: the key that replaced it when it is one of an older config
    (``config_renamed.yaml``), else the closest known key."""
    renamed = load_yaml(RENAMED_PATH).get(key)
    if renamed is not None:
        new = renamed.get("new")
        advice = f"write '{new}: {value}' instead" if new else "delete it"
        note = f" ({renamed['note']})" if renamed.get("note") else ""
        return ConfigError(f"config key '{key}' in {source} is from an older version of this project: {advice}{note}")
    close = difflib.get_close_matches(key, list(schema), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}' in {source}{hint}")


CLI_SUB_KEY = re.compile(r"--(\w+)\.(\w+)=(.*)$", re.DOTALL)


def cli_sub_keys(arguments, schema, parser):
    """{block: {sub_key: value}} of the ``--block.sub_key=value`` arguments; a retired key stops with the new form,
    anything else unknown is argparse's usage error. ``--block.type=X`` starts a new block of type X: the other
    sub-keys of the file's block do not carry over to another type."""
    found = {}
    for argument in arguments:
        match = CLI_SUB_KEY.match(argument)
        if match and schema.get(match.group(1), {}).get("type") == "block":
            found.setdefault(match.group(1), {})[match.group(2)] = _parse_cli_value(argument, match.group(3), {})
            continue
        name = argument[2:].split("=", 1)[0] if argument.startswith("--") else None
        if name in retired_keys():
            raise retired_error(name, argument.split("=", 1)[1] if "=" in argument else None, "the command line")
        parser.error(f"unrecognized arguments: {argument}")
    return found


def validate(values, schema, source):
    """Check every key of ``values`` against ``schema``; unknown keys raise naming the key and ``source``."""
    out = {}
    for key, value in values.items():
        if key not in schema:
            if key in retired_keys():
                raise retired_error(key, value, source)
            raise unknown_key_error(key, value, schema, source)
        out[key] = check_value(key, value, schema[key])
    return out


def load_config(argv=None, description=None, default_config=None):
    """Parse ``argv`` (``--config_path`` and ``--key=value``) into a validated ``Config``."""
    schema = load_schema()
    parser = build_parser(schema, description, default_config)
    args, rest = parser.parse_known_args(argv)
    sub_keys = cli_sub_keys(rest, schema, parser)
    values = {key: spec.get("default") for key, spec in schema.items()}
    if args.config_path:
        values.update(read_config_file(args.config_path, schema))
    cli = {
        key: _parse_cli_value(key, text, schema[key])
        for key, text in vars(args).items()
        if key != "config_path" and text is not None
    }
    values.update(validate(cli, schema, "the command line"))
    for key, subs in sub_keys.items():
        values[key] = dict({} if "type" in subs else check_block(key, values[key], schema[key]), **subs)
    values = validate(values, schema, "the defaults")
    cfg = Config(**values)
    cfg.config_path = args.config_path
    return cfg
