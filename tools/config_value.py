"""Print one key of a run's configuration (YAML + --key=value overrides, validated), for the launch scripts:

python tools/config_value.py KEY [--config_path CONFIG] [--key=value ...]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src.model_utils.cli import run_main  # noqa: E402
from src.model_utils.config import ConfigError, load_config  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        sys.exit(__doc__)
    try:
        cfg = load_config(argv[1:], entry="config_value")
    except ConfigError as err:
        sys.exit(f"error: {err}")
    if not hasattr(cfg, argv[0]):
        sys.exit(f"error: unknown config key '{argv[0]}'")
    print(getattr(cfg, argv[0]))


if __name__ == "__main__":
    sys.exit(run_main(main))
