"""Write the digits demo data (see src/data/digits.py):

python tools/prepare_digits.py OUT_DIR [--size H W] [--task unseen_scans|unseen_digits] [--seed N]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src.data.digits import DEMO_TASK, TASKS, prepare_digits  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--size", type=int, nargs=2, default=(32, 32), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairs drawn")
    parser.add_argument(
        "--task",
        default=DEMO_TASK,
        choices=sorted(TASKS),
        help=f"which scans train and which are held out (default: the demo's, {DEMO_TASK})",
    )
    args = parser.parse_args(argv)
    print(json.dumps(prepare_digits(args.out_dir, tuple(args.size), seed=args.seed, task=args.task), indent=2))


if __name__ == "__main__":
    sys.exit(run_main(main))
