"""The direction of imports. The packages of ``src/`` form layers, written down in ``LAYERS`` (lowest first): a
package imports only the layers below it, never one above, and ``src/`` never reaches up into ``tools/``,
``benchmarks/``, ``tests/`` or an entry point. An import written as a string counts as an import: a string that
is a module path (``"src.pkg.module"``, ``"src.pkg.module:function"``) in a ``.py`` or YAML file of ``src/``."""

import ast
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = {os.path.splitext(name)[0] for name in os.listdir(ROOT) if name.endswith(".py")}
UPWARD = {"tools", "benchmarks", "tests"} | ENTRY_POINTS
# The packages (and top-level modules) of src, lowest first. train validates with eval's protocols; deploy
# exports checkpoints and reads eval's JSON; infer runs models as eval loads them, with deploy's sidecar threshold.
LAYERS = [
    "model_utils",
    "registry",
    "kernels",
    "network",
    "heads",
    "data",
    "detect",
    "eval",
    "train",
    "deploy",
    "infer",
]
RANK = {f"src.{name}": rank for rank, name in enumerate(LAYERS)}
STRING_IMPORT = re.compile(r"src(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")


def imported_modules(path):
    """Absolute module names that the file at ``path`` imports (function-level imports included)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def src_files(extensions=(".py",)):
    for folder, _, files in os.walk(os.path.join(ROOT, "src")):
        for name in files:
            if name.endswith(extensions):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, ROOT).replace(os.sep, "/"), path


def strings_in(value):
    """Every string of a parsed YAML document (keys and values, nested)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def string_imports(path):
    """The strings of the file at ``path`` that are module paths of src (a sentence naming one is not)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".py"):
        found = (node.value for node in ast.walk(ast.parse(text, path)) if isinstance(node, ast.Constant))
    else:
        found = strings_in(yaml.safe_load(text))
    return [value for value in found if isinstance(value, str) and STRING_IMPORT.fullmatch(value)]


def package_of(module):
    """'src.eval.pairs' -> 'src.eval'; 'src.registry' -> 'src.registry' (a top-level module of src)."""
    parts = module.split(".")
    return ".".join(parts[:2])


def file_package(rel):
    """The package of the file ``rel`` of src: 'src/eval/pairs.py' -> 'src.eval'; 'src/__init__.py' -> 'src'."""
    module = os.path.splitext(rel)[0].replace("/", ".")
    return package_of(module[: -len(".__init__")] if module.endswith(".__init__") else module)


def test_src_never_imports_tools_benchmarks_tests_or_entry_points():
    offenders = [
        f"{rel}: {module}"
        for rel, path in src_files()
        for module in imported_modules(path)
        if module.split(".")[0] in UPWARD
    ]
    assert not offenders, offenders


def test_src_packages_form_no_cycle():
    edges = {}
    for rel, path in src_files():
        own = package_of(rel[:-3].replace("/", "."))
        for module in imported_modules(path):
            if module.startswith("src.") and package_of(module) != own:
                edges.setdefault(own, {}).setdefault(package_of(module), rel)

    def cycle_from(start, node, seen):
        for target in edges.get(node, {}):
            if target == start:
                return [node, target]
            if target not in seen:
                seen.add(target)
                rest = cycle_from(start, target, seen)
                if rest:
                    return [node] + rest
        return None

    for package in edges:
        cycle = cycle_from(package, package, {package})
        assert cycle is None, " -> ".join(cycle) + f" (first edge from {edges[cycle[0]][cycle[1]]})"


def test_every_package_of_src_has_a_layer():
    packages = {file_package(rel) for rel, _ in src_files()} - {"src"}
    assert packages == set(RANK), f"not in LAYERS: {sorted(packages - set(RANK))}; gone: {sorted(set(RANK) - packages)}"


def test_no_package_imports_a_layer_above_it():
    offenders = []
    for rel, path in src_files((".py", ".yaml", ".yml")):
        own = file_package(rel)
        if own == "src":
            continue
        modules = imported_modules(path) if rel.endswith(".py") else []
        strings = [text.split(":")[0] for text in string_imports(path)]
        for module in modules + strings:
            target = package_of(module)
            if module.startswith("src.") and RANK.get(target, -1) > RANK[own]:
                offenders.append(f"{rel}: {module} ({target} is above {own})")
    assert not offenders, offenders
