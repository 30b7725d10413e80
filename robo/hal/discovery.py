"""What is attached to this machine: every driver's `discover()` plus the sim devices of the cells.

Hardware drivers enumerate without opening anything (RealSense serials through pyrealsense2, V4L2
capture nodes from sysfs, SpaceMice through hidapi, joysticks through SDL). Sim devices are not
attached hardware; they are listed from the cell files that configure them. Like RLinf's per-node
hardware enumeration, the result is what a scheduler would use to place jobs on this node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from robo.config import ConfigError, read_yaml
from robo.hal import registry
from robo.hal.resource import DeviceInfo


@dataclass
class Discovery:
    devices: list[DeviceInfo] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # driver type -> why it could not enumerate


def discover(types: list[str] | None = None, *, cells: Path | None = None, include_sim: bool = True) -> Discovery:
    """Enumerate devices of the given driver types (default: all known) and configured sim devices."""
    out = Discovery()
    for name in types or list(registry.available()):
        try:
            cls = registry.get_driver(name)
            if getattr(cls, "simulated", False):
                continue
            out.devices.extend(cls.discover())
        except Exception as e:  # one broken driver must not hide the others
            out.errors[name] = f"{type(e).__name__}: {e}"
    if include_sim:
        out.devices.extend(configured_sim_devices(cells))
    return out


def configured_sim_devices(cells: Path | None = None) -> list[DeviceInfo]:
    """Sim resources named in cell files (configs/cells by default); files are read, not validated."""
    if cells is None:
        from robo.hal.cell import cells_dir

        cells = cells_dir()
    out: list[DeviceInfo] = []
    if not cells.is_dir():
        return out
    for path in sorted(cells.glob("*.yaml")):
        try:
            data = read_yaml(path)
        except ConfigError:
            continue
        cell = str(data.get("name") or path.stem)
        for rname, entry in (data.get("resources") or {}).items():
            rtype = entry.get("type") if isinstance(entry, dict) else None
            if not isinstance(rtype, str) or not registry.is_known(rtype):
                continue
            try:
                cls = registry.get_driver(rtype)
            except Exception:
                continue
            if getattr(cls, "simulated", False):
                out.append(DeviceInfo(rtype, f"{cell}/{rname}", f"simulated ({cls.kind})", {"cell_file": str(path)}))
    return out
