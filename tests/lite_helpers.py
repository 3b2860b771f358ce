"""The tiny fixture network of the MindSpore Lite harness tests (running the harness: src/deploy/lite_harness.py)."""

import os

# The tiny network the Lite fixtures were made from (tools/make_lite_fixture.py) and its config arguments.
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "lite")
FIXTURE_ARGS = [
    "--device_target",
    "CPU",
    "--backbone",
    "sphere4",
    "--backbone_width",
    "0.125",
    "--embedding_size",
    "16",
    "--image_size",
    "[40, 32]",
    "--ckpt_file",
    os.path.join(FIXTURE, "sphere4_tiny.ckpt"),
]
