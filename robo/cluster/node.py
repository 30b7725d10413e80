"""A node of a robo Ray cluster: what it advertises, how it joins, who holds what.

A robot machine advertises each leasable resource of its cell as a unit Ray custom resource, so the
scheduler's own feasibility checks decide where actors go and a count of 1 makes a robot exclusive
among Ray jobs: arms (actuators) as `robot:<cell>/<name>`, cameras as `camera:<cell>/<name>`. The
cell's name is the node label `robo.io/cell`. Teleop devices are not advertised (they belong to the
operator beside the robot, not to jobs). The list comes from the HAL: the cell file's resources
(`robo.hal.cell.Cell`), checked against `robo.hal.discovery.discover` (a hardware resource whose driver
finds no device of its type here is refused unless `allow_missing`).

The Ray reservation and the HAL lease agree: the actor placed on a robot's bundle builds the cell env,
which takes the robot's exclusive HAL lease on that node (robo.cells.env), so a job outside Ray still
cannot command the arm. `join` also records the cell file for the node under the runtime dir
(`<runtime>/cluster/cell-<name>.json`), where actors placed there find it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robo.hal import lease as _lease
from robo.hal.cell import Cell, resolve_cell_path

__all__ = [
    "CELL_LABEL", "NodeAdvert", "RobotResource", "advertise", "cell_file_for", "join", "parse_resource",
    "robot_bundle", "status", "status_rows",
]

CELL_LABEL = "robo.io/cell"
ROBOT_PREFIX = "robot:"
CAMERA_PREFIX = "camera:"
PG_PREFIX = "robo/"  # placement groups of robo jobs: robo/<run>/<what>


@dataclass(frozen=True)
class RobotResource:
    """One advertised resource: the Ray resource name and the HAL lease key it stands for."""

    name: str
    """Ray custom resource, e.g. `robot:sim_panda/arm`."""
    cell: str
    resource: str
    kind: str
    lease_key: str


@dataclass
class NodeAdvert:
    """What `robo cluster join` advertises for one cell."""

    cell: str
    cell_path: Path
    resources: list[RobotResource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ray_resources(self) -> dict[str, float]:
        return {r.name: 1.0 for r in self.resources}

    def labels(self) -> dict[str, str]:
        return {CELL_LABEL: self.cell}


def parse_resource(name: str) -> tuple[str, str, str]:
    """`robot:<cell>/<res>` -> ("robot", cell, res); ValueError naming the expected form."""
    prefix, sep, rest = name.partition(":")
    cell, slash, res = rest.partition("/")
    if not sep or not slash or not cell or not res or prefix not in ("robot", "camera"):
        raise ValueError(f"resource {name!r} is not of the form robot:<cell>/<name> or camera:<cell>/<name>")
    return prefix, cell, res


def advertise(cell: str | Path, *, allow_missing: bool = False) -> NodeAdvert:
    """The unit resources and label of a cell, from the HAL (see the module docstring)."""
    from robo.hal.discovery import discover

    path = resolve_cell_path(cell)
    loaded = Cell.load(path)
    _check_label_value(loaded.name)
    out = NodeAdvert(loaded.name, path.resolve())
    hardware = sorted({r.type_name for r in loaded.resources.values() if not getattr(r, "simulated", False)
                       and (r.actuator or r.kind == "camera")})
    found = discover(hardware, include_sim=False) if hardware else None
    found_types = {d.type for d in found.devices} if found else set()
    for rname, res in loaded.resources.items():
        if res.actuator:
            prefix = ROBOT_PREFIX
        elif res.kind == "camera":
            prefix = CAMERA_PREFIX
        else:
            continue  # teleop devices, other sensors: the operator's, not a job's
        if not getattr(res, "simulated", False) and res.type_name not in found_types:
            why = (found.errors.get(res.type_name) if found else None) or "no device of this type found here"
            if not allow_missing:
                raise RuntimeError(f"cell {loaded.name}: resource '{rname}' ({res.type_name}) is not attached to "
                                   f"this machine ({why}); join on the machine it hangs off, or --allow-missing")
            out.notes.append(f"{rname} ({res.type_name}): not discovered here ({why}); advertised anyway")
        out.resources.append(RobotResource(f"{prefix}{loaded.name}/{rname}", loaded.name, rname, res.kind,
                                           res.lease_key))
    if not any(r.name.startswith(ROBOT_PREFIX) for r in out.resources):
        raise ValueError(f"cell {loaded.name} ({path}) has no arm or humanoid to advertise")
    return out


def _check_label_value(value: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?", value):
        raise ValueError(f"cell name {value!r} cannot be a node label value (letters, digits, '-', '_', '.'; "
                         "at most 63; starts and ends with a letter or digit)")


def robot_bundle(robot: str, cameras: list[str], cpus: float = 1.0) -> dict[str, float]:
    """The placement-group bundle of a robot's first actor: the robot, its cameras, its CPU."""
    return {robot: 1.0, **{c: 1.0 for c in cameras}, "CPU": cpus}


# ==================================================================================== on the node
def _cells_dir() -> Path:
    return _lease.runtime_dir() / "cluster"


def record_cell(advert: NodeAdvert) -> Path:
    """Remember which cell file this node's actors open for `advert.cell`."""
    d = _cells_dir()
    d.mkdir(parents=True, exist_ok=True)
    rec = d / f"cell-{advert.cell}.json"
    tmp = rec.with_suffix(".tmp")
    tmp.write_text(json.dumps({"cell": advert.cell, "path": str(advert.cell_path),
                               "resources": [r.__dict__ for r in advert.resources]}))
    os.replace(tmp, rec)
    return rec


def cell_file_for(cell: str) -> Path:
    """The cell file `robo cluster join` recorded on this node for `cell` (actors placed here open it)."""
    rec = _cells_dir() / f"cell-{cell}.json"
    if not rec.is_file():
        raise FileNotFoundError(f"cell {cell!r} was never joined on this node ({rec} missing): "
                                f"run `robo cluster join --cell <file>` here")
    return Path(json.loads(rec.read_text())["path"])


def _ray_executable() -> str:
    exe = Path(sys.executable).with_name("ray")
    if exe.is_file():
        return str(exe)
    found = shutil.which("ray")
    if found is None:
        from robo.cluster import INSTALL_HINT

        raise RuntimeError(INSTALL_HINT)
    return found


def join_command(advert: NodeAdvert, *, address: str | None = None, port: int = 6379,
                 node_ip: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
                 dashboard: bool = False, extra: list[str] | None = None) -> list[str]:
    """The `ray start` command line of `join` (head without `address`)."""
    labels = ",".join(f"{k}={v}" for k, v in advert.labels().items())
    cmd = [_ray_executable(), "start", f"--resources={json.dumps(advert.ray_resources())}", f"--labels={labels}"]
    if address:
        cmd.append(f"--address={address}")
    else:
        cmd += ["--head", f"--port={port}", f"--include-dashboard={'true' if dashboard else 'false'}"]
    if node_ip:
        cmd.append(f"--node-ip-address={node_ip}")
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    if num_gpus is not None:
        cmd.append(f"--num-gpus={num_gpus}")
    return cmd + list(extra or [])


def join(cell: str | Path, *, address: str | None = None, allow_missing: bool = False, **kw: Any) -> int:
    """`robo cluster join`: advertise the cell and start (or join) a Ray node with `ray start`."""
    from robo.cluster import require_ray

    require_ray()
    advert = advertise(cell, allow_missing=allow_missing)
    cmd = join_command(advert, address=address, **kw)
    for note in advert.notes:
        print(f"robo cluster join: {note}", flush=True)
    print(f"robo cluster join: cell {advert.cell} ({advert.cell_path}): "
          f"{', '.join(r.name for r in advert.resources)}; label {CELL_LABEL}={advert.cell}", flush=True)
    record_cell(advert)
    return subprocess.call(cmd)


# ==================================================================================== status
def holders_by_resource(ray: Any) -> dict[str, str]:
    """Ray resource -> the robo job whose placement group holds it (from the placement-group table)."""
    out: dict[str, str] = {}
    for pg in ray.util.placement_group_table().values():
        if pg.get("state") not in ("CREATED", "PENDING", "RESCHEDULING"):
            continue
        name = pg.get("name") or pg.get("placement_group_id", "?")
        for bundle in (pg.get("bundles") or {}).values():
            for key in bundle:
                if key.startswith((ROBOT_PREFIX, CAMERA_PREFIX)):
                    state = "" if pg.get("state") == "CREATED" else f" ({pg['state'].lower()})"
                    out.setdefault(key, f"{name}{state}")
    return out


def local_leases() -> dict[str, str]:
    """Ray resource -> its HAL lease holder, for the cells joined on this machine (leased ones only)."""
    out: dict[str, str] = {}
    d = _cells_dir()
    for rec in sorted(d.glob("cell-*.json")) if d.is_dir() else []:
        try:
            resources = json.loads(rec.read_text())["resources"]
        except (OSError, ValueError, KeyError):
            continue
        for r in resources:
            hs = _lease.holders(r["lease_key"])
            if hs:
                out[r["name"]] = ", ".join(f"HAL lease {h.mode} pid {h.pid}" for h in hs)
    return out


def status_rows(ray: Any) -> list[dict[str, Any]]:
    """One row per alive node: id, address, cell label, CPUs, GPUs, robots/cameras and their holders
    (the robo job's placement group; on this machine also the HAL lease's holder)."""
    held = holders_by_resource(ray)
    for res, lease_text in local_leases().items():
        held[res] = f"{held[res]}; {lease_text}" if res in held else lease_text
    rows = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources") or {}
        labels = node.get("Labels") or {}
        robots = sorted(k for k in res if k.startswith((ROBOT_PREFIX, CAMERA_PREFIX)))
        rows.append({
            "node_id": node["NodeID"], "address": node.get("NodeManagerAddress", "?"),
            "cell": labels.get(CELL_LABEL, ""), "cpus": res.get("CPU", 0.0), "gpus": res.get("GPU", 0.0),
            "resources": {r: held.get(r, "free") for r in robots},
            "head": bool(node.get("is_head_node") or res.get("node:__internal_head__")),
        })
    return rows


def status(address: str | None = None, *, as_json: bool = False) -> int:
    """`robo cluster status`: nodes, robots, GPUs and what holds each."""
    from robo.cluster import require_ray

    ray = require_ray()
    ray.init(address=address or "auto", logging_level="ERROR", log_to_driver=False)
    try:
        rows = status_rows(ray)
    finally:
        ray.shutdown()
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = []
    for r in rows:
        name = f"{r['address']} {r['node_id'][:8]}" + (" (head)" if r["head"] else "")
        items = list(r["resources"].items()) or [("-", "")]
        for i, (res, holder) in enumerate(items):
            first = i == 0
            table.append([name if first else "", r["cell"] if first else "",
                          f"{r['cpus']:g}" if first else "", f"{r['gpus']:g}" if first else "", res, holder])
    from robo.commands.resources import _table

    print(_table(table, ["NODE", "CELL", "CPUS", "GPUS", "RESOURCE", "HELD BY"]))
    return 0
