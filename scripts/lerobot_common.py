"""Shared by the LeRobot checks (scripts/lerobot_fixture.py, scripts/check_lerobot.py): import LeRobot 0.4's
dataset code in the environment `bash scripts/lerobot_env.sh` makes, and robo from this checkout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "fixtures" / "lerobot_v30"
REFERENCE = REPO / "tests" / "data" / "fixtures" / "lerobot_v30_reference.npz"

_torchvision_schemas: Any = None  # a torch.library.Library: its definitions live as long as it does


def import_torchvision() -> Any:
    """`import torchvision`, also where its C++ ops cannot load.

    PyPI's torchvision is a CUDA build: beside a CPU torch its `_C.so` does not load, and the Python part
    then fails while registering fake kernels for `nms` and `qnms`, the two ops it registers
    unconditionally ("operator torchvision::nms does not exist"). Declaring their schemas lets the
    Python part import. LeRobot's dataset code calls no torchvision C++ op (those serve detection
    models; its videos are decoded by torchcodec); a call to one would fail loudly, not silently.
    Where torchvision loads normally (a CUDA torch), nothing is declared."""
    global _torchvision_schemas
    try:
        import torchvision
    except RuntimeError as e:
        if "torchvision::nms" not in str(e):
            raise
        import torch

        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _torchvision_schemas = torch.library.Library("torchvision", "DEF")
        _torchvision_schemas.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _torchvision_schemas.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import torchvision
    return torchvision


def import_lerobot() -> Any:
    """The `lerobot` package, with robo importable from this checkout."""
    import_torchvision()
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import lerobot

    return lerobot


def lerobot_version() -> str:
    from importlib.metadata import version

    return version("lerobot")
