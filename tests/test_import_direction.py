"""The direction of imports: ``src/`` never reaches up into ``tools/``, ``benchmarks/`` or an entry point, and no
package of ``src/`` imports a sibling that imports it back (directly or around a longer cycle)."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = {os.path.splitext(name)[0] for name in os.listdir(ROOT) if name.endswith(".py")}
UPWARD = {"tools", "benchmarks", "tests"} | ENTRY_POINTS


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


def src_files():
    for folder, _, files in os.walk(os.path.join(ROOT, "src")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, ROOT).replace(os.sep, "/"), path


def package_of(module):
    """'src.eval.pairs' -> 'src.eval'; 'src.registry' -> 'src.registry' (a top-level module of src)."""
    parts = module.split(".")
    return ".".join(parts[:2])


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
