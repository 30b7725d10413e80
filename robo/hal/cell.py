"""Cells: the resources of one workstation and how they are wired, from a YAML file.

    # configs/cells/sim_panda.yaml
    name: sim_panda
    host: localhost                 # the machine the devices hang off (placement hint)
    resources:
      arm:    {type: sim_panda, config: {control_mode: ee_delta}}
      wrist:  {type: mujoco_camera, config: {camera: wrist, width: 64, height: 64}, wiring: {sim: arm}}
      mouse:  {type: spacemouse, wiring: {controls: arm}}

Loading validates everything without touching hardware: unknown keys, unknown driver types, driver
config errors (e.g. a RealSense without `serial`) and wiring to missing resources all raise one
`ConfigError` naming the file and the key.

    cell = Cell.load("configs/cells/sim_panda.yaml")
    with cell.acquire(job="collect"):        # leases: actuators exclusive, cameras shared
        cell.connect()
        ...
        cell.close()
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robo import config as _config
from robo.config import ConfigError
from robo.hal import lease as _lease
from robo.hal import registry
from robo.hal.resource import Health, Resource

_TOP_KEYS = {"name", "description", "host", "resources"}
_RES_KEYS = {"type", "config", "wiring", "description"}


def cells_dir() -> Path:
    """configs/cells of this checkout / installation."""
    import robo.configs

    return Path(next(iter(robo.configs.__path__))) / "cells"


def resolve_cell_path(cell: str | Path) -> Path:
    """A path as given if it exists, else `configs/cells/<cell>.yaml`."""
    p = Path(cell)
    if p.is_file():
        return p
    for cand in (cells_dir() / p.name, cells_dir() / f"{p.name}.yaml"):
        if cand.is_file():
            return cand
    raise ConfigError(f"cell file not found: {cell} (also looked in {cells_dir()})")


def build_config(cls: type | None, values: Any, prefix: str, source: str) -> Any:
    """Build a driver config dataclass from a YAML mapping with robo.config's checks."""
    if cls is None:
        if values:
            raise ConfigError(f"{source}: '{prefix.rstrip('.')}' is given but this driver takes no config")
        return None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.')}' must be a mapping, got {values!r}")
    return _config._build(cls, values, prefix, source)


class CellLease:
    """Leases on several resources of a cell, released together."""

    def __init__(self, leases: list[tuple[Resource, _lease.Lease]]) -> None:
        self.leases = leases

    def release(self) -> None:
        for res, held in reversed(self.leases):
            held.release()
            if res._lease is held:
                res._lease = None
        self.leases = []

    def __enter__(self) -> CellLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Cell:
    """The resources of one workstation."""

    def __init__(
        self, name: str, resources: Mapping[str, Resource], wiring: Mapping[str, Mapping[str, str]] | None = None,
        *, host: str = "localhost", description: str = "", path: Path | None = None,
    ) -> None:
        self.name = name
        self.resources: dict[str, Resource] = dict(resources)
        self.wiring: dict[str, dict[str, str]] = {k: dict(v) for k, v in (wiring or {}).items()}
        self.host = host
        self.description = description
        self.path = path
        for rname, peers in self.wiring.items():
            self.resources[rname].bind({role: self.resources[target] for role, target in peers.items()})
        for rname, res in self.resources.items():
            if rname not in self.wiring and res.required_wiring:
                res.bind({})  # raises naming the missing role

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | Path) -> Cell:
        p = resolve_cell_path(path)
        return cls.from_dict(_config.read_yaml(p), source=str(p), default_name=p.stem, path=p)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "cell", default_name: str = "cell", path: Path | None = None
    ) -> Cell:
        unknown = [k for k in data if k not in _TOP_KEYS]
        if unknown:
            raise ConfigError(f"{source}: unknown cell key '{unknown[0]}' (valid keys: {', '.join(sorted(_TOP_KEYS))})")
        name = str(data.get("name") or default_name)
        entries = data.get("resources")
        if not isinstance(entries, dict) or not entries:
            raise ConfigError(f"{source}: 'resources' must be a non-empty mapping of name -> {{type, config, wiring}}")
        resources: dict[str, Resource] = {}
        wiring: dict[str, dict[str, str]] = {}
        for rname, entry in entries.items():
            where = f"resources.{rname}"
            if not isinstance(entry, dict):
                raise ConfigError(f"{source}: '{where}' must be a mapping with a 'type', got {entry!r}")
            bad = [k for k in entry if k not in _RES_KEYS]
            if bad:
                raise ConfigError(
                    f"{source}: unknown key '{where}.{bad[0]}' (valid keys: {', '.join(sorted(_RES_KEYS))})"
                )
            rtype = entry.get("type")
            if not isinstance(rtype, str) or not rtype:
                raise ConfigError(f"{source}: '{where}.type' is missing (one of: {', '.join(registry.available())})")
            if not registry.is_known(rtype):
                raise ConfigError(
                    f"{source}: '{where}.type' = '{rtype}' is not a known resource type "
                    f"(known: {', '.join(registry.available())}; third-party drivers register through the "
                    f"'{registry.ENTRY_POINT_GROUP}' entry-point group)"
                )
            try:
                driver = registry.get_driver(rtype)
            except ImportError as e:
                raise ConfigError(f"{source}: '{where}.type' = '{rtype}' cannot be loaded: {e}") from None
            cfg = build_config(driver.config_class, entry.get("config"), f"{where}.config.", source)
            resources[str(rname)] = driver(cfg, name=str(rname), cell=name)
            w = entry.get("wiring") or {}
            if not isinstance(w, dict):
                raise ConfigError(f"{source}: '{where}.wiring' must be a mapping of role -> resource name")
            for role, target in w.items():
                if target not in entries:
                    raise ConfigError(
                        f"{source}: '{where}.wiring.{role}' = {target!r} is not a resource of this cell "
                        f"(resources: {', '.join(map(str, entries))})"
                    )
                if target == rname:
                    raise ConfigError(f"{source}: '{where}.wiring.{role}' cannot point at itself")
            if w:
                wiring[str(rname)] = {str(k): str(v) for k, v in w.items()}
            missing = [r for r in driver.required_wiring if r not in w]
            if missing:
                raise ConfigError(
                    f"{source}: '{where}' ({rtype}) needs 'wiring.{missing[0]}' naming a resource of this cell"
                )
        try:
            return cls(
                name, resources, wiring, host=str(data.get("host") or "localhost"),
                description=str(data.get("description") or ""), path=path,
            )
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from None

    # ---------------------------------------------------------------- access
    def __getitem__(self, name: str) -> Resource:
        try:
            return self.resources[name]
        except KeyError:
            raise KeyError(f"cell '{self.name}' has no resource '{name}' (has: {', '.join(self.resources)})") from None

    def __iter__(self):
        return iter(self.resources.items())

    def by_kind(self, kind: str) -> dict[str, Resource]:
        return {n: r for n, r in self.resources.items() if r.kind == kind}

    def by_type(self, type_name: str) -> dict[str, Resource]:
        return {n: r for n, r in self.resources.items() if r.type_name == type_name}

    def _order(self, names: Iterable[str] | None = None) -> list[str]:
        """Resource names with wired peers before the resources that use them."""
        ts: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for n in self.resources:
            ts.add(n, *self.wiring.get(n, {}).values())
        order = list(ts.static_order())
        if names is None:
            return order
        wanted = set(names)
        for n in list(wanted):  # peers of wanted resources come along
            stack = [n]
            while stack:
                for p in self.wiring.get(stack.pop(), {}).values():
                    if p not in wanted:
                        wanted.add(p)
                        stack.append(p)
        return [n for n in order if n in wanted]

    # ---------------------------------------------------------------- leases / lifecycle
    def acquire(
        self, names: Iterable[str] | None = None, *, job: str | None = None, timeout: float = 0.0,
        modes: Mapping[str, _lease.Mode] | None = None,
    ) -> CellLease:
        """Lease the named resources (default: all): actuators exclusive, cameras shared.

        All or nothing: on the first refusal every lease taken so far is released and the
        LeaseError (naming the holder) propagates. Keys are taken in sorted order.
        """
        modes = dict(modes or {})
        # only the named resources: reading a camera wired to a sim arm does not lease the arm
        todo = [self[n] for n in (self.resources if names is None else names)]
        todo.sort(key=lambda r: r.lease_key)
        taken: list[tuple[Resource, _lease.Lease]] = []
        try:
            for res in todo:
                held = res.lease(modes.get(res.name), timeout=timeout, job=job)
                taken.append((res, held))
        except BaseException:
            CellLease(taken).release()
            raise
        return CellLease(taken)

    def connect(self, names: Iterable[str] | None = None) -> None:
        done: list[Resource] = []
        try:
            for n in self._order(names):
                self.resources[n].connect()
                done.append(self.resources[n])
        except BaseException:
            for r in reversed(done):
                r.close()
            raise

    def close(self) -> None:
        for n in reversed(self._order()):
            try:
                self.resources[n].close()
            except Exception:
                pass

    def __enter__(self) -> Cell:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> dict[str, Health]:
        out: dict[str, Health] = {}
        for n, r in self.resources.items():
            try:
                out[n] = r.health()
            except Exception as e:
                out[n] = Health("unknown", f"health check failed: {e}")
        return out
