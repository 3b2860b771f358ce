"""The fault table of docs/faults.md ("When things go wrong"): every row names tests that exist, and every test of
the fault test files (tests/test_faults_*.py) backs a row. Every table of the page whose header starts with
``| Fault |`` counts, so later sections may add their own."""

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAULTS_PAGE = os.path.join(ROOT, "docs", "faults.md")
REFERENCE = re.compile(r"`(tests/test_faults_\w+\.py)::(\w+)`")


def table_rows():
    with open(FAULTS_PAGE, encoding="utf-8") as f:
        lines = f.read().splitlines()
    rows, in_table = [], False
    for line in lines:
        if line.startswith("| Fault |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            rows.append(line)
    return rows


def test_the_readme_points_at_the_fault_page():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert "docs/faults.md" in f.read()


def test_every_row_names_existing_tests():
    rows = table_rows()
    assert len(rows) >= 22
    for row in rows:
        references = REFERENCE.findall(row.rsplit("|", 2)[-2])
        assert references, f"row without a test: {row[:80]}"
        for path, name in references:
            with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                assert re.search(rf"^def {name}\(", f.read(), re.MULTILINE), f"{path}::{name} (row: {row[:60]})"


def test_every_fault_test_backs_a_row():
    named = {reference for row in table_rows() for reference in REFERENCE.findall(row)}
    for path in glob.glob(os.path.join(ROOT, "tests", "test_faults_*.py")):
        relpath = os.path.relpath(path, ROOT)
        if relpath == "tests/test_faults_table.py":
            continue
        with open(path, encoding="utf-8") as f:
            tests = re.findall(r"^def (test_\w+)\(", f.read(), re.MULTILINE)
        missing = [name for name in tests if (relpath, name) not in named]
        assert not missing, f"{relpath}: tests without a row in docs/faults.md: {missing}"
