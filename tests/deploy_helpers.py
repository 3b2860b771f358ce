"""Helpers of the deployment-chain tests: a small LFW pair subset and a run of scripts/run_infer_310.sh."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared")
LFW = os.path.join(SHARED, "data", "lfw")
SCRIPT = os.path.join(REPO, "scripts", "run_infer_310.sh")


def write_subset(path, per_class):
    """The first ``per_class`` same and different lines of pairsDevTest.txt as a View 1 file (header N), so the
    10 folds are built as for the full file."""
    with open(os.path.join(LFW, "pairsDevTest.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    count = int(lines[0])
    same, different = lines[1 : 1 + count], lines[1 + count : 1 + 2 * count]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join([str(per_class)] + same[:per_class] + different[:per_class]) + "\n")
    return str(path)


def run_script(*args, cwd, **env):
    """bash scripts/run_infer_310.sh ARGS from ``cwd`` with this interpreter as PYTHON and ``env`` added."""
    environment = dict(os.environ, PYTHON=sys.executable, **env)
    return subprocess.run(
        ["bash", SCRIPT, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=900,
        check=False,
    )
