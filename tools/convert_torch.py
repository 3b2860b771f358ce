"""Convert a PyTorch face-recognition checkpoint into a MindSpore checkpoint.

    python tools/convert_torch.py --backbone mobilefacenet --torch_ckpt 068.ckpt --output mobilefacenet.ckpt \
        [--embedding_size 128] [--image_size 112 96]

The conversion: src/deploy/torch_convert.py.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # Run as a script: make `src` importable.
    sys.path.insert(0, ROOT)

from src.deploy.torch_convert import MAPPINGS, ConversionError, convert, load_torch_state_dict, save_checkpoint  # noqa: E402
from src.model_utils.cli import run_main  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--backbone", required=True, choices=sorted(MAPPINGS))
    parser.add_argument("--torch_ckpt", required=True, help="PyTorch checkpoint: a state_dict or a dict holding one")
    parser.add_argument("--output", required=True, help="MindSpore checkpoint to write (.ckpt, must not exist)")
    parser.add_argument("--embedding_size", type=int, default=None, help="default: the backbone's default")
    parser.add_argument(
        "--image_size", type=int, nargs=2, metavar=("H", "W"), default=None, help="default: the backbone's default"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.output.endswith(".ckpt"):
        raise SystemExit(f"error: --output must end with .ckpt: {args.output}")
    if os.path.exists(args.output):
        raise SystemExit(f"error: {args.output} exists (MindSpore checkpoints are read-only): choose a new name")
    try:
        params = convert(
            args.backbone,
            load_torch_state_dict(args.torch_ckpt),
            embedding_size=args.embedding_size,
            image_size=args.image_size,
        )
    except ConversionError as err:
        raise SystemExit(f"error: {args.torch_ckpt}: {err}") from err
    save_checkpoint(params, args.output)
    print(
        f"{args.output}: {len(params)} parameters, {sum(v.size for v in params.values()):,} values "
        f"({args.backbone} from {args.torch_ckpt})"
    )


if __name__ == "__main__":
    import mindspore

    from src.model_utils.cpu_isa import apply_cpu_isa

    apply_cpu_isa("auto")
    mindspore.set_device("CPU")
    sys.exit(run_main(main))
