"""Scene files of the tasks: found next to the task's own module, with robo's pieces includable by name.

A task's `scene_xml` is an absolute path, or a file name looked up next to the module that defines the
task class (a user's package keeps its scenes beside its code), then in robo's `sim/assets`.

Any scene may include robo's pieces by name, wherever it lives::

    <include file="robo:panda.xml"/>          the Panda arm and gripper (joints, actuators, `tcp` site)
    <include file="robo:physics.xml"/>        500 Hz physics, rendering, the `object` geom class
    <include file="robo:table.xml"/>          the table (top at z = 0) and a light
    <include file="robo:cameras.xml"/>        cameras `front` and `side` on the task area
    <include file="robo:scene_common.xml"/>   all four (what robo's own tasks include)

The names are served from memory through MuJoCo's virtual file system (`assets=` of
`MjModel.from_xml_path`), so the scene's own relative includes and files still resolve next to it.
"""

from __future__ import annotations

import functools
import inspect
import re
from pathlib import Path

import mujoco

ASSETS = Path(__file__).resolve().parent / "assets"
PREFIX = "robo:"
#: robo's scene pieces a scene of any package may include as `robo:<name>`.
INCLUDABLE = ("panda.xml", "physics.xml", "table.xml", "cameras.xml", "scene_common.xml")
_INCLUDE = re.compile(r'(<include\s+file=")([^"]+)(")')


@functools.cache
def robo_assets() -> dict[str, bytes]:
    """`robo:<name>` -> file contents for MuJoCo's VFS; robo's own includes inside point at `robo:` names."""
    out = {}
    for name in INCLUDABLE:
        text = (ASSETS / name).read_text()
        text = _INCLUDE.sub(lambda m: m.group(1) + (PREFIX + m.group(2) if m.group(2) in INCLUDABLE else m.group(2))
                            + m.group(3), text)
        out[PREFIX + name] = text.encode()
    return out


def resolve_scene(scene_xml: str | Path, owner: type) -> Path:
    """Path of a task's scene file: absolute as given, else next to the module defining `owner.scene_xml`
    (the class in owner's MRO that sets it), else in robo's assets; ValueError naming where it looked."""
    path = Path(scene_xml)
    if path.is_absolute():
        if not path.is_file():
            raise ValueError(f"{owner.__name__}.scene_xml: {path} does not exist")
        return path
    definer = next((c for c in owner.__mro__ if "scene_xml" in vars(c)), owner)
    try:
        here = Path(inspect.getfile(definer)).resolve().parent
    except (TypeError, OSError):  # a class defined interactively
        here = Path.cwd()
    for folder in (here, ASSETS):
        if (folder / path).is_file():
            return folder / path
    raise ValueError(f"{owner.__name__}.scene_xml={str(scene_xml)!r}: no such file in {here} nor in {ASSETS}")


def load_scene(path: str | Path) -> mujoco.MjModel:
    """Compile a scene file, with robo's pieces available as `robo:<name>` includes."""
    try:
        return mujoco.MjModel.from_xml_path(str(path), assets=robo_assets())
    except ValueError as e:  # MuJoCo names the element and line; keep it to one line with the file
        raise ValueError(f"{path}: {' '.join(str(e).split())}") from None
