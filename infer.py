"""Face verification of two photos, 1:N search of photos in a gallery of people, or embeddings of a folder; the
usage is in ``python infer.py --help`` (src/infer/command.py)."""

import sys

from src.infer.command import cli

if __name__ == "__main__":
    sys.exit(cli())
