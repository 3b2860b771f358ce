"""Convert an exported ONNX embedding network into a MindSpore Lite MINDIR.

    python tools/to_lite.py MODEL.onnx OUTPUT.mindir [--fixed-onnx FIXED.onnx]
                            [--lite-home DIR] [--python37 PYTHON] [--py37-deps DIR] [--device_target CPU|GPU|Ascend]

The steps and their reasons: src/deploy/lite_convert.py.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.deploy.lite_convert import ConversionError, to_lite  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", maxsplit=1)[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("onnx", help="ONNX model from mindspore.onnx.export")
    parser.add_argument("output", help="Lite MINDIR to write (must end in .mindir)")
    parser.add_argument("--fixed-onnx", help="also keep the ONNX with the PReLU slopes folded here")
    parser.add_argument(
        "--lite-home",
        help="mindspore_lite folder of the unpacked wheel (default: $MINDSPORE_LITE_HOME, then $MS_LITE_HOME)",
    )
    parser.add_argument(
        "--python37", help="Python 3.7 interpreter for the converter (default: python3.7 on PATH, then pyenv's 3.7.x)"
    )
    parser.add_argument(
        "--py37-deps",
        help="folder for numpy if the Python 3.7 interpreter lacks it "
        "(default: py37-site-packages beside the Lite folder)",
    )
    parser.add_argument(
        "--device_target",
        choices=("CPU", "GPU", "Ascend"),
        default="CPU",
        help="device the model will run on: Ascend converts with optimize=ascend_oriented and needs a fixed batch",
    )
    args = parser.parse_args(argv)
    try:
        folded, decomposed = to_lite(
            args.onnx,
            args.output,
            fixed_onnx=args.fixed_onnx,
            lite_home=args.lite_home,
            python37=args.python37,
            py37_deps=args.py37_deps,
            device_target=args.device_target,
        )
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    decomposed_note = f", rewrote {decomposed} PRelu node(s) for the dynamic shape" if decomposed else ""
    print(f"Folded {folded} PReLU slope Unsqueeze node(s){decomposed_note}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
