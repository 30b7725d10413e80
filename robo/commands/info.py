"""`robo info`: versions, registered tasks, policies, drivers, and whether the C++ controller is built."""

from __future__ import annotations

import argparse
import importlib
import platform

HELP = "show versions, registered tasks, policies, drivers and whether the C++ controller is built"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def _version(mod: str) -> str:
    try:
        m = importlib.import_module(mod)
        return str(getattr(m, "__version__", "installed"))
    except Exception as e:  # report, never crash `robo info`
        return f"missing ({type(e).__name__})"


def run(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import robo

    print(f"robo {getattr(robo, '__version__', '0.1.0')} on Python {platform.python_version()} ({platform.machine()})")
    for mod in ("torch", "mujoco", "pinocchio", "zmq", "diffusers", "pyarrow", "av", "cv2", "pyrealsense2"):
        print(f"  {mod:<13} {_version(mod)}")
    try:
        import torch

        print(f"  cuda          {'available: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}")
    except Exception:
        pass
    try:
        import robo.sim  # noqa: F401

        tasks = sorted(k for k in gym.registry if k.startswith("Panda"))
        print(f"tasks: {', '.join(tasks) or 'none'}")
    except Exception as e:
        print(f"tasks: unavailable ({e})")
    try:
        from robo.policies import POLICIES

        print(f"policies: {', '.join(sorted(POLICIES))}")
    except Exception as e:
        print(f"policies: unavailable ({e})")
    try:
        from robo.hal.registry import available

        print(f"drivers: {', '.join(sorted(available()))}")
    except Exception as e:
        print(f"drivers: unavailable ({type(e).__name__})")
    try:
        from robo.drivers import rt

        print(f"C++ controller (robo.drivers.rt): built ({getattr(rt, '__file__', '')})")
    except Exception as e:
        print(f"C++ controller (robo.drivers.rt): NOT built ({e}); tasks use the Python controller")
    return 0
