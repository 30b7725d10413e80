"""`robo resources`: list a cell's resources with health and leases, discover attached devices.

    robo resources list --cell configs/cells/sim_panda.yaml     # resources, health, lease holders
    robo resources list                                         # driver types and known cells
    robo resources discover                                     # RealSense serials, V4L2, HID, sim
    robo resources leases                                       # every lease held on this machine
    robo resources check --cell sim_panda                       # lease + connect each, live health
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

HELP = "list, discover and check hardware resources of a cell (arms, cameras, teleop devices)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", default="list", choices=["list", "discover", "leases", "check"],
        help="list: a cell's resources with health and leases (or, without --cell, driver types and cells); "
             "discover: devices attached here plus configured sim devices; leases: leases held on this "
             "machine; check: lease and connect a cell's resources, then report live health (default: list)",
    )
    parser.add_argument("--cell", default=None, help="cell YAML path or name under configs/cells")
    parser.add_argument("--type", action="append", default=None, help="discover: only these driver types")
    parser.add_argument("--seconds", type=float, default=1.0, help="check: run this long before reporting")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _lease_text(key: str) -> str:
    from robo.hal import lease

    hs = lease.holders(key)
    if not hs:
        return "free"
    return "; ".join(f"{h.mode} pid {h.pid} ({h.command[:40]})" for h in hs)


def _list(args: argparse.Namespace) -> int:
    from robo.hal import registry
    from robo.hal.cell import Cell, cells_dir

    if args.cell is None:
        drivers = registry.available()
        cells = sorted(p.stem for p in cells_dir().glob("*.yaml"))
        if args.json:
            print(json.dumps({"drivers": drivers, "cells": cells}, indent=2))
            return 0
        print("driver types:")
        print(_table([[n, o] for n, o in drivers.items()], ["TYPE", "FROM"]))
        print(f"\ncells in {cells_dir()}: {', '.join(cells) or 'none'}")
        print("show one with: robo resources list --cell <name>")
        return 0
    cell = Cell.load(args.cell)
    health = cell.health()
    rows: list[dict[str, Any]] = []
    for name, res in cell.resources.items():
        rows.append({
            "name": name, "type": res.type_name, "kind": res.kind, "key": res.lease_key,
            "health": health[name].status, "detail": health[name].detail, "lease": _lease_text(res.lease_key),
            "wiring": cell.wiring.get(name, {}),
        })
    if args.json:
        print(json.dumps({"cell": cell.name, "host": cell.host, "path": str(cell.path), "resources": rows}, indent=2))
        return 0
    print(f"cell {cell.name} ({cell.path}) on {cell.host}" + (f": {cell.description}" if cell.description else ""))
    table = [[r["name"], r["type"], r["kind"], f"{r['health']}: {r['detail']}", r["lease"],
              ", ".join(f"{k}={v}" for k, v in r["wiring"].items())] for r in rows]
    print(_table(table, ["NAME", "TYPE", "KIND", "HEALTH", "LEASE", "WIRING"]))
    return 0


def _discover(args: argparse.Namespace) -> int:
    from robo.hal.discovery import discover

    found = discover(args.type)
    if args.json:
        print(json.dumps({
            "devices": [{"type": d.type, "id": d.id, "name": d.name, "details": d.details} for d in found.devices],
            "errors": found.errors,
        }, indent=2, default=str))
        return 0
    if found.devices:
        rows = [[d.type, d.id, d.name, ", ".join(f"{k}={v}" for k, v in d.details.items() if v)]
                for d in found.devices]
        print(_table(rows, ["TYPE", "ID", "NAME", "DETAILS"]))
    else:
        print("no devices found")
    for t, err in found.errors.items():
        print(f"  ({t}: could not enumerate: {err})")
    return 0


def _leases(args: argparse.Namespace) -> int:
    from robo.hal import lease

    held = lease.list_leases()
    if args.json:
        print(json.dumps({k: [h.__dict__ for h in hs] for k, hs in held.items()}, indent=2))
        return 0
    if not held:
        print(f"no leases held (runtime dir {lease.runtime_dir()})")
        return 0
    rows = [[k, h.mode, str(h.pid), h.job or "", h.describe()] for k, hs in held.items() for h in hs]
    print(_table(rows, ["RESOURCE", "MODE", "PID", "JOB", "HOLDER"]))
    return 0


def _check(args: argparse.Namespace) -> int:
    from robo.hal.cell import Cell

    cell = Cell.load(args.cell)
    results: dict[str, Any] = {}
    with cell.acquire(job="robo resources check"):
        try:
            cell.connect()
            time.sleep(max(0.0, args.seconds))
            for name, h in cell.health().items():
                results[name] = {"status": h.status, "detail": h.detail, "metrics": h.metrics}
        finally:
            cell.close()
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        print(_table([[n, r["status"], r["detail"]] for n, r in results.items()], ["NAME", "HEALTH", "DETAIL"]))
    return 0 if all(r["status"] in ("ok", "degraded") for r in results.values()) else 1


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "action", None) or "list"
    if action == "check" and not args.cell:
        raise ValueError("robo resources check needs --cell")
    return {"list": _list, "discover": _discover, "leases": _leases, "check": _check}[action](args)
