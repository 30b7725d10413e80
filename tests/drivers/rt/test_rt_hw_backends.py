"""The Franka backend is only compiled where libfranka exists. Here it is at least type-checked
(g++ -fsyntax-only) against declaration-only stand-ins of the SDK API (mock_sdk/). (The Unitree G1 runs
through the ExternalBackend and drivers/unitree_g1, tested for real against a DDS loopback bridge.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from robo.drivers import rt

RT = Path(__file__).resolve().parents[3] / "drivers" / "rt"
MOCK = Path(__file__).resolve().parent / "mock_sdk"


def _include_dirs() -> list[str] | None:
    """Our headers, MuJoCo's (mujoco wheel) and Eigen's (cmeel build prefix or the system), or None."""
    import mujoco

    eigen = [Path(p) / "cmeel.prefix" / "include" / "eigen3" for p in sys.path] + [Path("/usr/include/eigen3")]
    eigen = [d for d in eigen if (d / "Eigen" / "Core").is_file()]
    if not eigen:
        return None
    return [str(MOCK), str(RT / "include"), str(eigen[0]), str(Path(mujoco.__file__).parent / "include")]


@pytest.mark.parametrize("source", ["franka_backend.cpp"])
def test_hardware_backend_compiles_against_the_sdk_api(source):
    # the test install (scripts/install.sh: `pip install -e ".[dev]"`) compiles the controller itself with
    # g++ and brings Eigen's headers (cmeel-eigen): a machine without them has not run it
    if shutil.which("g++") is None:
        pytest.fail("no g++ to syntax-check the backend source: install it (apt-get install g++) and run "
                    "`bash scripts/install.sh`")
    includes = _include_dirs()
    if includes is None:
        pytest.fail("no Eigen headers: the dev extra brings them (`pip install -e \".[dev]\"`: cmeel-eigen)")
    cmd = ["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
    cmd += [f"-I{d}" for d in includes] + [str(RT / "src" / source)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_hardware_classes_follow_the_build():
    assert hasattr(rt, "FrankaController") == rt.HAS_FRANKA
