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


def _print_tasks() -> None:
    """Every task robo can drive (its own and the `robo.tasks` plug-ins'), where it comes from, its expert."""
    from robo.sim import DEFAULT_TASK
    from robo.sim.registry import env_class, expert_factory, load_plugins, task_ids

    plugins = load_plugins()
    ids = task_ids()
    print(f"tasks ({len(ids)}; add your own: README \"Your own tasks\"):")
    rows = []
    for task in ids:
        try:
            cls = env_class(task)
            source = cls.__module__.split(".")[0]
            expert = "scripted expert" if expert_factory(cls) else "no scripted expert (teleop demos)"
        except Exception as e:  # a plug-in's broken task: report it, list the rest
            source, expert = "?", f"broken ({type(e).__name__}: {e})"
        rows.append((task, source, expert + ("  (default)" if task == DEFAULT_TASK else "")))
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(2)]
    for task, source, expert in rows:
        print(f"  {task:<{widths[0]}}  {source:<{widths[1]}}  {expert}")
    for p in plugins:
        if p.error:
            print(f"  plug-in {p.name} ({p.value}) failed to load: {p.error}")


def run(args: argparse.Namespace) -> int:
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
        _print_tasks()
    except Exception as e:
        print(f"tasks: unavailable ({type(e).__name__}: {e})")
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
