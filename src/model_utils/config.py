"""The one configuration loader: YAML file -> validated ``Config``, with ``--key=value`` CLI overrides.

Every key, its section, type, default and help live in ``config_schema.yaml`` next to this file (configs are data).
A user YAML may set any subset of them; the command line beats the YAML, the YAML beats the schema default.
An unknown key or a value of the wrong type stops with an error naming the key. One recipe file serves every entry
point, but each takes on its command line only the keys of its own sections (``ENTRIES``); its --help lists them
by section.

A key of type ``block`` holds a mapping (``head: {type: arcface, s: 64}``): its sub-keys are the schema's
``fields`` plus, for a ``variants: true`` block, the parameters its ``type`` declares, which the caller hands over
(``load_config(..., block_variants={"head": margin_parameters})``; without them those sub-keys go unchecked);
sub-keys are checked and defaulted like keys (errors name ``head.s``). On the command line
``--head='{type: cosface, s: 30}'`` replaces the block, ``--head.s=30`` sets one sub-key of it and
``--head.type=cosface`` starts a new block of that type. Retired keys (``config_retired.yaml``) are read in their
new form with a warning showing it, or stop with that form when there is no mechanical translation.
"""

import argparse
import difflib
import logging
import math
import os
import re

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_PATH = os.path.join(HERE, "config_schema.yaml")
RETIRED_PATH = os.path.join(HERE, "config_retired.yaml")
# The entry points' --config_path when none is given: the SphereFace recipe at the top of the project.
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(HERE)), "sphereface_config.yaml")
TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list}
LOG = logging.getLogger("facerec.config")
SECTIONS = (
    "device",
    "data",
    "model",
    "head",
    "optimisation",
    "checkpoints",
    "validation",
    "evaluation",
    "export",
    "deployment",
)
# The keys each entry point takes on its command line: those of its sections, plus "keys" of other sections, less
# "without". Its config file may hold keys of every section.
ENTRIES = {
    "train": {
        "script": "train.py",
        "sections": ("device", "data", "model", "head", "optimisation", "checkpoints", "validation"),
    },
    "eval": {"script": "eval.py", "sections": ("device", "model", "validation", "evaluation")},
    "export": {
        "script": "export.py",
        "sections": ("device", "model", "export"),
        "keys": ("ckpt_file",),
        "without": ("cpu_kernels",),
    },
    "infer": {
        "script": "infer.py",
        "sections": ("device", "model"),
        "keys": ("ckpt_file", "fusion", "eval_batch_size", "same_threshold", "eval_fit"),
    },
    "preprocess": {"script": "preprocess.py", "sections": ("model", "deployment"), "keys": ("val_targets",)},
    "postprocess": {"script": "postprocess.py", "sections": ("deployment",), "keys": ("fusion", "eval_output")},
    "digits_demo": {"script": "tools/digits_demo.py", "sections": SECTIONS},
    "config_value": {"script": "tools/config_value.py", "sections": SECTIONS},
}


class YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """``yaml.SafeLoader`` (libyaml's where PyYAML has it: the schema is read at every start) with YAML 1.2's
    booleans: only true / false, so that on, off, yes and no stay strings (``cpu_kernels: off``)."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in YamlLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"
)


class YamlDumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that quotes a string only where ``YamlLoader`` would not read it back as one."""


YamlDumper.yaml_implicit_resolvers = YamlLoader.yaml_implicit_resolvers


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key."""


class Config(argparse.Namespace):
    """Attribute access to the validated keys; ``to_dict()`` for saving next to a run."""

    def to_dict(self):
        return dict(vars(self))


def load_yaml(path):
    """Read a YAML mapping with ``YamlLoader`` (safe); the error names the file."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.load(f, Loader=YamlLoader)
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
    values.update(validate(translate_retired(data, path), schema, path))
    return values


def load_schema(block_variants=None):
    """The schema's keys; ``block_variants`` ({block key: function(type) -> {sub-key: spec}}) declares the sub-keys
    of each type of a ``variants: true`` block (without it, those sub-keys are kept unchecked)."""
    schema = load_yaml(SCHEMA_PATH)
    for key, declared in (block_variants or {}).items():
        schema[key] = dict(schema[key], variants=declared)
    return schema


def retired_table():
    """{old key: its entry in config_retired.yaml}."""
    return load_yaml(RETIRED_PATH)


def flow(value):
    """``value`` as YAML flow text (``{pairs: a.txt, root: b}``), as a user would write it."""
    text = yaml.dump(value, Dumper=YamlDumper, default_flow_style=True, width=1 << 30, sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def _variant_fields(key, spec, variant):
    """The sub-keys ``variant`` of block ``key`` declares, or None when the caller declared none."""
    declared = spec.get("variants")
    if not callable(declared):
        return None
    try:
        return declared(variant)
    except KeyError as err:
        raise ConfigError(f"config key '{key}.type': {err.args[0]}") from err


def check_block(key, value, spec):
    """A ``block`` value: a mapping whose sub-keys are checked against the block's fields and its type's declared
    parameters (``load_schema``'s block_variants), missing ones set to their defaults."""
    if isinstance(value, str):
        raise ConfigError(
            f"config key '{key}': expected a block, got the string {value!r}; write "
            f"'{key}: {{type: {value}}}' (command line: --{key}.type={value} or --{key}='{{type: {value}}}')"
        )
    if not isinstance(value, dict):
        raise ConfigError(
            f"config key '{key}': expected a block {{type: ..., ...}}, got {type(value).__name__} {value!r}"
        )
    fields, open_block = dict(spec["fields"]), False
    if "type" in fields:
        if "type" not in value:
            raise ConfigError(
                f"config key '{key}.type' is required: the block names its type, e.g. "
                f"'{key}: {{type: {fields['type']['default']}, ...}}'"
            )
        variant = check_value(f"{key}.type", value["type"], fields["type"])
        declared = _variant_fields(key, spec, variant)
        open_block = declared is None and spec.get("variants", False)
        fields.update(declared or {})
    out = {}
    for sub, sub_value in value.items():
        if sub not in fields and open_block:
            out[sub] = sub_value
            continue
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
        value = _check_scalar(key, value, type_name)
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
        return yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"config key '{key}': cannot parse {text!r}: {err}") from err


def entry_keys(schema, entry):
    """The keys ``entry`` (a name in ``ENTRIES``) takes on its command line, in schema order; every key for None."""
    if entry is None:
        return list(schema)
    spec = ENTRIES[entry]
    own = {key for key, key_spec in schema.items() if key_spec["section"] in spec["sections"]}
    own |= set(spec.get("keys", ()))
    return [key for key in schema if key in own and key not in spec.get("without", ())]


def other_entry_error(key, schema, entry):
    """The ``ConfigError`` for a schema key ``entry`` does not take on its command line, naming the entry points
    that do."""
    users = [
        spec["script"]
        for name, spec in ENTRIES.items()
        if tuple(spec["sections"]) != SECTIONS and key in entry_keys(schema, name)
    ]
    if len(users) == 1:
        owner = f"{'an' if users[0][0] in 'aeiou' else 'a'} {users[0]} key"
    else:
        owner = f"a key of {', '.join(users[:-1])} and {users[-1]}"
    return ConfigError(f"{key} is {owner}; {ENTRIES[entry]['script']} does not use it (a config file may hold it)")


def build_parser(schema, keys, description=None, default_config=None):
    """The parser of ``--config_path`` and ``keys``, its --help listing them under one heading per section."""
    parser = argparse.ArgumentParser(
        description=description, allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = f" (default: {default_config})" if default_config else ""
    parser.add_argument("--config_path", default=default_config, help=f"YAML file with the run's settings{default}")
    groups = {}
    for section in SECTIONS:
        for key in (key for key in keys if schema[key]["section"] == section):
            if section not in groups:
                groups[section] = parser.add_argument_group(f"{section} keys")
            spec = schema[key]
            # A key given alone means its schema's ``bare`` value (``--resume`` -> auto); a bool key alone means true.
            bare = spec.get("bare", "true" if spec["type"] == "bool" else None)
            flag = {"nargs": "?", "const": bare} if bare is not None else {}
            groups[section].add_argument(
                f"--{key}",
                default=None,
                metavar=spec["type"].upper(),
                **flag,
                help=f"{spec['help']} (default: {flow(spec.get('default'))})".replace("%", "%%"),
            )
    return parser


def unknown_key_error(key, schema, source):
    """The ``ConfigError`` for a key ``schema`` lacks, with the closest known key."""
    close = difflib.get_close_matches(key, list(schema), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}' in {source}{hint}")


def unknown_option_error(name, keys):
    """The one-line ``ConfigError`` for ``--name``, an option of no entry point, with the closest of ``keys``."""
    close = difflib.get_close_matches(name, list(keys) + ["config_path"], n=1)
    hint = f"did you mean --{close[0]}?" if close else "see --help"
    return ConfigError(f"unknown option --{name}; {hint}")


def retired_spec(rule, schema):
    """The schema spec a retired key's value is read with on the command line (its new key's or item field's)."""
    if "item" in rule:
        return schema["val_targets"]["fields"][rule["item"]]
    return schema.get(rule.get("new"), {})


def command_line_rest(rest, schema, keys, entry):
    """({block: {sub_key: value}}, {retired key: value}) of the arguments argparse left in ``rest``:
    ``--block.sub_key=value`` of a block among ``keys`` and the retired keys (``--key=value`` or ``--key value``).
    A key of another entry point, an unknown option or a stray word stops with one line."""
    blocks, retired, table = {}, {}, retired_table()
    position = 0
    while position < len(rest):
        token = rest[position]
        position += 1
        if not token.startswith("--"):
            raise ConfigError(f"unexpected argument {token!r}: give settings as --key=value")
        name, has_value, text = token[2:].partition("=")
        block, dot, sub = name.partition(".")
        if dot and schema.get(block, {}).get("type") == "block":
            if block not in keys:
                raise other_entry_error(block, schema, entry)
            blocks.setdefault(block, {})[sub] = _parse_cli_value(token, text, {})
        elif name in table:
            if not has_value and position < len(rest) and not rest[position].startswith("--"):
                text, has_value, position = rest[position], "=", position + 1
            value = _parse_cli_value(name, text, retired_spec(table[name], schema)) if has_value else None
            if "block" in table[name]:
                block, sub = cli_block_key(name, value, table[name], keys, schema, entry)
                blocks.setdefault(block, {})[sub] = value
            else:
                retired[name] = value
        elif name in schema:
            raise other_entry_error(name, schema, entry)
        else:
            raise unknown_option_error(name, keys)
    return blocks, retired


def warn_retired(key, source, new_form):
    """The one-line warning of a retired key read in its new form."""
    LOG.warning("config key '%s' in %s: retired, read as '%s'", key, source, new_form)


def cli_block_key(name, value, rule, keys, schema, entry):
    """(block, sub_key) a retired ``--name=value`` sets, as ``--block.sub_key=value`` would."""
    block, sub = rule["block"].split(".")
    if value is None:
        raise block_error(name, value, rule, "the command line")
    if block not in keys:
        raise other_entry_error(block, schema, entry)
    warn_retired(name, "the command line", f"--{block}.{sub}={flow(value)}")
    return block, sub


def moved_into_block(data, key, value, rule, source):
    """``data`` with the value of ``key``, retired into a sub-key of a block, set in that block, when ``data``
    holds the block (which names its type); else ``key`` stops with the block form."""
    block, sub = rule["block"].split(".")
    if not isinstance(data.get(block), dict) or value is None:
        raise block_error(key, value, rule, source)
    if data[block].get(sub, value) != value:
        raise ConfigError(
            f"config key '{key}' in {source} is retired and means '{block}.{sub}: {flow(value)}', but the {block} "
            f"block sets '{sub}: {flow(data[block][sub])}': write it once, in the block"
        )
    warn_retired(key, source, f"{block}: {{..., {sub}: {flow(value)}}}")
    return dict(data, **{block: dict(data[block], **{sub: value})})


def block_error(key, value, rule, source):
    """The ``ConfigError`` of a retired key moved into a block: its block form (the block names its type)."""
    block, sub = rule["block"].split(".")
    shown = "VALUE" if value is None else flow(value)
    return ConfigError(
        f"config key '{key}' in {source} is retired: the {block} is one block now, write "
        f"'{block}: {{type: <name>, {sub}: {shown}}}' (command line: --{block}.{sub}={shown})"
    )


def renamed_value(key, value, rule, source):
    """(new key, value) of a renamed retired key; a key without a mechanical translation stops with its new
    form."""
    older = f"config key '{key}' in {source} is from an older version of this project"
    if "removed" in rule:
        raise ConfigError(f"{older}: delete it ({rule['removed']})")
    if "stop" in rule:
        raise ConfigError(f"{older}: write '{rule['new']}: {flow(value)}' instead ({rule['stop']})")
    return rule["new"], rule.get("values", {}).get(value, value)


def key_list(keys):
    """Message text naming ``keys``: config key 'a', or config keys 'a', 'b'."""
    keys = list(keys)
    return f"config key{'s' if len(keys) > 1 else ''} {', '.join(repr(key) for key in keys)}"


def pair_set_targets(old, data, source, table):
    """The ``val_targets`` of the retired pair-set keys ``old`` ({key: value}, from one source): one item per
    pairs file (val_pairs, eval_pairs), with the eval_* fields beside it (and eval_fit, when ``data`` sets it)."""
    fields = {table[key]["item"]: value for key, value in old.items() if table[key]["item"] != "pairs"}
    if "eval_fit" in data:
        fields["fit"] = data["eval_fit"]
    files = list(dict.fromkeys(value for key, value in old.items() if table[key]["item"] == "pairs"))
    if not files:
        raise ConfigError(
            f"{key_list(old)} in {source}: retired, and no val_pairs / eval_pairs file beside it: write "
            f"'val_targets: [{flow(dict(pairs='PAIRS', **fields))}]'"
        )
    targets = [dict(pairs=pairs, **fields) for pairs in files]
    if data.get("val_targets"):
        raise ConfigError(
            f"{key_list(old)} and 'val_targets' are both set in {source}: give every pair set in "
            f"val_targets ({flow(targets)}, ...) and delete the retired keys"
        )
    LOG.warning("%s in %s: retired, read as 'val_targets: %s'", key_list(old), source, flow(targets))
    return targets


def translate_retired(data, source):
    """``data`` (the keys of one config file or of the command line) with its retired keys (config_retired.yaml)
    in their new form, each logged as a one-line warning showing it; a retired key without a mechanical
    translation stops with its new form."""
    table = retired_table()
    out = {key: value for key, value in data.items() if key not in table}
    implied, pair_set = {}, {}
    for key, value in data.items():
        if key not in table:
            continue
        if "item" in table[key]:
            if value is not None:
                pair_set[key] = value
            continue
        if "block" in table[key]:
            out = moved_into_block(out, key, value, table[key], source)
            continue
        new_key, new_value = renamed_value(key, value, table[key], source)
        if new_key in out and out[new_key] != new_value:
            other = f"'{implied[new_key]}' means" if new_key in implied else "it also sets"
            raise ConfigError(
                f"config key '{key}' in {source} is retired and means '{new_key}: {flow(new_value)}', but {other} "
                f"'{new_key}: {flow(out[new_key])}': write {new_key} once"
            )
        out[new_key], implied[new_key] = new_value, key
        warn_retired(key, source, f"{new_key}: {flow(new_value)}")
    if pair_set:
        out["val_targets"] = pair_set_targets(pair_set, out, source, table)
    return out


def validate(values, schema, source):
    """Check every key of ``values`` against ``schema``; unknown keys raise naming the key and ``source``."""
    out = {}
    for key, value in values.items():
        if key not in schema:
            raise unknown_key_error(key, schema, source)
        out[key] = check_value(key, value, schema[key])
    return out


def command_line_values(args, retired, schema, keys, entry):
    """The validated keys of the command line: argparse's ``args`` and the ``retired`` keys in their new form,
    which must be keys of ``entry`` too."""
    given = {
        key: _parse_cli_value(key, text, schema[key])
        for key, text in vars(args).items()
        if key != "config_path" and text is not None
    }
    translated = translate_retired(dict(given, **retired), "the command line")
    for key in translated:
        if key not in keys:
            raise other_entry_error(key, schema, entry)
    return validate(translated, schema, "the command line")


def load_config(argv=None, description=None, default_config=None, entry=None, block_variants=None):
    """Parse ``argv`` (``--config_path`` and ``--key=value``) into a validated ``Config``. ``entry`` (a name in
    ``ENTRIES``) takes only that entry point's keys on the command line (every key when None); ``block_variants``
    ({block key: function(type) -> {sub-key: spec}}) declares the sub-keys of each type of a block."""
    schema = load_schema(block_variants)
    keys = entry_keys(schema, entry)
    args, rest = build_parser(schema, keys, description, default_config).parse_known_args(argv)
    sub_keys, retired = command_line_rest(rest, schema, keys, entry)
    values = {key: spec.get("default") for key, spec in schema.items()}
    if args.config_path:
        values.update(read_config_file(args.config_path, schema))
    values.update(command_line_values(args, retired, schema, keys, entry))
    for key, subs in sub_keys.items():
        values[key] = dict({} if "type" in subs else check_block(key, values[key], schema[key]), **subs)
    values = validate(values, schema, "the defaults")
    cfg = Config(**values)
    cfg.config_path = args.config_path
    return cfg
