"""`robo train --residual --ray`: place the spine's learner and actors on a Ray cluster.

Ray only places processes; what runs in them is the ordinary `robo learner` and `robo actor` code
(robo.commands.learner / robo.commands.actor: a `robo.learn.spine.LearnerCore` behind robo's ZMQ
transport, a `Collector` streaming rows to it), so every placement runs one loop:

- the learner: one Ray actor in a bundle with a GPU when the cluster has one (else a CPU), pinned
  there by its placement group (its run folder lives on that node);
- robots: one placement group per robot (`STRICT_PACK`): bundle 0 holds the robot's unit resource,
  its cell's cameras and a CPU, bundles 1..k-1 a CPU each, all on the robot's node (label
  `robo.io/cell`); actor j of the robot acts on the cell (`robo actor --cell`, copy j of a sim cell),
  and its cell env takes the robot's HAL lease on that node;
- simulated actors: Ray actors with one CPU anywhere (`SPREAD`), acting on the task in the fast path.

Rows and weights travel over robo's own transport (RPC + PUB, `tcp://<learner node>:<port>`), not
Ray's object store: `scripts/bench_scale.py` measures both. An actor that dies (SIGKILL included) is
restarted by Ray in its bundle (`max_restarts`) and run again; the learner keeps training. A learner
that dies is restarted in its bundle on the same ports and resumes from its run folder. A robot held
by another robo job is waited for (`robot_wait_s`) or refused with a message naming the holder.
`<run>/placement.json` records where each process ran (node, pid, restarts).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from robo.cluster import require_ray
from robo.cluster.node import (
    CAMERA_PREFIX,
    CELL_LABEL,
    PG_PREFIX,
    ROBOT_PREFIX,
    holders_by_resource,
    parse_resource,
    robot_bundle,
)

__all__ = ["RayPlan", "SpineProcess", "cluster_profile", "connect", "train_on_ray"]


@dataclass
class RayPlan:
    """Where `train_on_ray` puts the spine's processes."""

    address: str | None = None
    """Ray cluster address (host:port); None: the running local cluster, else a new local one."""
    n_sim_actors: int = 0
    """Simulated actors (the task in the fast path), one CPU each, anywhere."""
    actors_per_robot: int = 0
    """Actors per robot (a sim cell runs copy j for actor j; a real cell takes 1)."""
    robots: list[str] | None = None
    """Ray robot resources to use (`robot:<cell>/<arm>`); None: every robot in the cluster."""
    robot_wait_s: float = 0.0
    """Wait this long for a robot another job holds (0: refuse at once)."""
    max_restarts: int = 3
    """Restarts per actor (and for the learner) before the run gives up on it."""
    learner_gpus: float | None = None
    """GPUs of the learner's bundle (None: 1 when the cluster has a GPU, else 0)."""
    cameras: str | None = None
    """Cell cameras the robot actors observe (default: those the base needs)."""
    teleop: str | None = None
    """`scripted`: the scripted operator may take over in every robot actor's cell envs (robo.hil)."""
    actor_overrides: list[str] = field(default_factory=list)
    """Local overrides for every actor (`robo actor` key=value: base=, demos=, n_envs=...)."""

    def __post_init__(self) -> None:
        from robo.config import check_range

        for name in ("n_sim_actors", "actors_per_robot", "robot_wait_s"):
            check_range(name, getattr(self, name), 0)


# ==================================================================================== the Ray actor
class SpineProcess:
    """A `robo learner` or `robo actor` run inside a Ray actor (wrapped with `ray.remote` by `_remote`)."""

    def __init__(self, role: str) -> None:
        self.role = role

    def where(self) -> dict[str, Any]:
        """Node id, node address, host and pid of this process; whether Ray restarted it."""
        import ray

        ctx = ray.get_runtime_context()
        with warnings.catch_warnings():  # Ray 2.60 warns about its own use of a deprecated getter here
            warnings.simplefilter("ignore")
            restarted = bool(ctx.was_current_actor_reconstructed)
        return {"node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                "host": socket.gethostname(), "pid": os.getpid(), "restarted": restarted}

    def reserve_ports(self, n: int) -> list[int]:
        """`n` TCP ports free on this node (the learner binds them; the same ones after a restart)."""
        from robo.runtime.launch import free_port

        return [free_port("0.0.0.0") for _ in range(n)]

    def run_learner(self, argv: list[str], run_dir: str, config_yaml: str) -> int:
        """`robo learner` with `argv`; a run folder with a checkpoint is resumed (after a restart)."""
        run = Path(run_dir)
        cfg = Path(tempfile.mkdtemp(prefix="robo-ray-")) / "config.yaml"
        cfg.write_text(config_yaml)
        argv = [*argv, "--config", str(cfg)]
        if (run / "checkpoint" / "state.pt").is_file():
            argv.append("--resume")
        elif (run / "replay").exists():  # died before its first checkpoint: nothing to resume from
            print(f"robo ray: learner restarted before any checkpoint of {run}; starting it again", flush=True)
            shutil.rmtree(run / "replay", ignore_errors=True)
        return _run_command("learner", argv)

    def run_actor(self, argv: list[str], cell: str | None = None) -> int:
        """`robo actor` with `argv`; `cell` names a cell joined on this node (its file is looked up here)."""
        if cell is not None:
            from robo.cluster.node import cell_file_for

            argv = [*argv, "--cell", str(cell_file_for(cell))]
        return _run_command("actor", argv)


def _run_command(name: str, argv: list[str]) -> int:
    """Run robo's own command `name` in this process, exactly as `robo <name> argv` would."""
    import argparse
    import importlib

    module = importlib.import_module(f"robo.commands.{name}")
    parser = argparse.ArgumentParser(prog=f"robo {name}")
    module.add_arguments(parser)
    return int(module.run(parser.parse_intermixed_args(argv)) or 0)


def _remote(ray: Any) -> Any:
    return ray.remote(SpineProcess)


# ==================================================================================== connecting
def connect(address: str | None) -> Any:
    """`ray.init` on the cluster at `address` (None: the local one, started if none runs)."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, logging_level="WARNING", namespace="robo")
    return ray


def _ray_initialized() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return bool(ray.is_initialized())


def cluster_profile(address: str | None) -> str:
    """The RL profile the learner's placement calls for: gpu when the cluster has a GPU."""
    ray = connect(address)
    return "gpu" if ray.cluster_resources().get("GPU", 0) >= 1 else "cpu"


def _cluster_robots(ray: Any) -> dict[str, dict[str, Any]]:
    """robot resource -> {"node_id", "cell", "cameras"} of the alive nodes."""
    out: dict[str, dict[str, Any]] = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources") or {}
        for key in res:
            if key.startswith(ROBOT_PREFIX):
                _, cell, _ = parse_resource(key)
                cams = sorted(k for k in res if k.startswith(f"{CAMERA_PREFIX}{cell}/"))
                out[key] = {"node_id": node["NodeID"], "cell": cell, "cameras": cams}
    return out


def _held_message(robot: str, holder: str) -> str:
    return (f"{robot} is held by {holder}; wait for that job (--robot-wait-s SECONDS) or choose another robot "
            "(`robo cluster status` lists robots and holders)")


# ==================================================================================== the run
@dataclass
class _Slot:
    """One actor of the run and its history."""

    actor_id: int
    kind: str  # "robot" | "sim"
    handle: Any
    argv: list[str]
    cell: str | None = None
    robot: str | None = None
    instance: int = 0
    ref: Any = None
    restarts: int = 0
    code: int | None = None
    error: str | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"actor_id": self.actor_id, "kind": self.kind, "robot": self.robot, "cell": self.cell,
                "instance": self.instance, "restarts": self.restarts, "code": self.code, "error": self.error,
                "runs": self.runs}


class _Run:
    """The driver side of one `train_on_ray` run."""

    def __init__(self, ray: Any, algo: Any, cfg: Any, run_dir: Path, plan: RayPlan) -> None:
        self.ray, self.algo, self.cfg, self.run_dir, self.plan = ray, algo, cfg, run_dir, plan
        self.name = f"{PG_PREFIX}{run_dir.name}"
        self.pgs: list[Any] = []
        self.slots: list[_Slot] = []
        self.learner: Any = None
        self.learner_runs: list[dict[str, Any]] = []
        self.learner_restarts = 0
        self.Proc = _remote(ray)

    # ------------------------------------------------------------------------------- placement
    def _pg(self, bundles: list[dict[str, float]], what: str, strategy: str, labels: dict[str, str] | None = None,
            wait_s: float = 600.0) -> Any:
        from ray.util.placement_group import placement_group, remove_placement_group

        kw: dict[str, Any] = {"name": f"{self.name}/{what}", "strategy": strategy}
        if labels:
            kw["bundle_label_selector"] = [dict(labels) for _ in bundles]
        pg = placement_group(bundles, **kw)
        try:
            self.ray.get(pg.ready(), timeout=wait_s)
        except self.ray.exceptions.GetTimeoutError:
            remove_placement_group(pg)
            raise
        self.pgs.append(pg)
        return pg

    def _strategy(self, pg: Any, index: int) -> Any:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=index)

    def place_learner(self) -> None:
        gpus = self.plan.learner_gpus
        if gpus is None:
            gpus = 1.0 if self.ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        bundle = {"CPU": 1.0, **({"GPU": float(gpus)} if gpus else {})}
        try:
            pg = self._pg([bundle], "learner", "STRICT_PACK", wait_s=120.0)
        except self.ray.exceptions.GetTimeoutError:
            raise RuntimeError(f"no node has {bundle} free for the learner within 120 s "
                               "(robo cluster status shows what the nodes hold)") from None
        self.learner = self.Proc.options(num_cpus=1, num_gpus=gpus, max_restarts=self.plan.max_restarts,
                                         scheduling_strategy=self._strategy(pg, 0)).remote("learner")
        self.learner_where = self._where(self.learner)
        rpc, pub = self.ray.get(self.learner.reserve_ports.remote(2))
        ip = self.learner_where["node_ip"]
        self.endpoints = (f"tcp://{ip}:{rpc}", f"tcp://{ip}:{pub}")
        self.learner_argv = ["--algo", self.algo.name, "--run-dir", str(self.run_dir), "--bind", f"tcp://*:{rpc}",
                             "--pub", f"tcp://*:{pub}", "--log-level", "WARNING"]

    def robots(self) -> list[tuple[str, dict[str, Any]]]:
        """The robots this run asked for, each advertised by a live node and not held by another job."""
        if self.plan.actors_per_robot == 0:
            return []
        known = _cluster_robots(self.ray)
        wanted = self.plan.robots if self.plan.robots is not None else sorted(known)
        if not wanted:
            raise RuntimeError("--actors-per-robot: no node of the cluster advertises a robot "
                               "(`robo cluster join --cell <cell.yaml>` on each robot's machine)")
        missing = [r for r in wanted if r not in known]
        if missing:
            raise RuntimeError(f"no live node advertises {missing[0]} (robots: {', '.join(sorted(known)) or 'none'}; "
                               "`robo cluster status` lists them)")
        if self.plan.robot_wait_s == 0:
            held = holders_by_resource(self.ray)
            for r in wanted:
                if r in held:
                    raise RuntimeError(_held_message(r, held[r]))
        return [(r, known[r]) for r in wanted]

    def place_actors(self, robots: list[tuple[str, dict[str, Any]]]) -> None:
        learner, weights = self.endpoints
        common = ["--algo", self.algo.name, "--learner", learner, "--weights", weights, "--log-level", "WARNING",
                  "--learner-timeout-s", "300"]
        k = self.plan.actors_per_robot
        opts = {"num_cpus": 1, "max_restarts": self.plan.max_restarts}
        for i in range(self.plan.n_sim_actors):
            handle = self.Proc.options(scheduling_strategy="SPREAD", **opts).remote("actor")
            argv = [*common, "--actor-id", str(i), *self.plan.actor_overrides]
            self.slots.append(_Slot(i, "sim", handle, argv))
        for robot, info in robots:
            bundles = [robot_bundle(robot, info["cameras"])] + [{"CPU": 1.0} for _ in range(k - 1)]
            try:
                pg = self._pg(bundles, robot, "STRICT_PACK", {CELL_LABEL: info["cell"]},
                              wait_s=max(self.plan.robot_wait_s, 60.0))
            except self.ray.exceptions.GetTimeoutError:
                holder = holders_by_resource(self.ray).get(robot)
                raise RuntimeError(_held_message(robot, holder) if holder else
                                   f"{robot}: its node has no room for {bundles} (robo cluster status)") from None
            for j in range(k):
                aid = len(self.slots)
                res = {robot: 1.0, **{c: 1.0 for c in info["cameras"]}} if j == 0 else {}
                handle = self.Proc.options(scheduling_strategy=self._strategy(pg, j), resources=res,
                                           **opts).remote("actor")
                argv = [*common, "--actor-id", str(aid), "--cell-instance", str(j), "n_envs=1",
                        *(["--cameras", self.plan.cameras] if self.plan.cameras else []),
                        *(["--teleop", self.plan.teleop] if self.plan.teleop else []), *self.plan.actor_overrides]
                self.slots.append(_Slot(aid, "robot", handle, argv, info["cell"], robot, j))
        for slot in self.slots:
            self._start(slot)

    def _where(self, handle: Any, timeout_s: float = 300.0) -> dict[str, Any]:
        """`where()` of a Ray actor, waiting while Ray restarts it (calls meanwhile fail as unavailable)."""
        unavailable = getattr(self.ray.exceptions, "ActorUnavailableError", ())
        end = time.monotonic() + timeout_s
        while True:
            try:
                return {**self.ray.get(handle.where.remote()), "t": time.time()}
            except unavailable:
                if time.monotonic() > end:
                    raise
                time.sleep(0.5)

    def _start(self, slot: _Slot) -> None:
        slot.runs.append(self._where(slot.handle))
        slot.ref = slot.handle.run_actor.remote(slot.argv, slot.cell)
        self.write_placement()

    # ------------------------------------------------------------------------------- supervision
    def write_placement(self) -> None:
        from robo.data.atomic import atomic_write_json

        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.run_dir / "placement.json", {
            "learner": {"runs": self.learner_runs, "restarts": self.learner_restarts, "endpoints": self.endpoints},
            "actors": [s.record() for s in self.slots], "plan": asdict(self.plan),
        })

    def _dead(self, e: BaseException) -> bool:
        ex = self.ray.exceptions
        kinds = tuple(k for k in (getattr(ex, "RayActorError", None), getattr(ex, "ActorUnavailableError", None)) if k)
        return isinstance(e, kinds)

    def start_learner(self) -> None:
        self.learner_runs.append(self._where(self.learner))
        self.lref = self.learner.run_learner.remote(self.learner_argv, str(self.run_dir), self.config_yaml)

    def supervise(self) -> int:
        """Until the learner finishes: restart dead actors, restart (resume) a dead learner."""
        while True:
            refs = [self.lref] + [s.ref for s in self.slots if s.ref is not None]
            ready, _ = self.ray.wait(refs, num_returns=1, timeout=1.0)
            for ref in ready:
                if ref == self.lref:
                    try:
                        return int(self.ray.get(ref))
                    except Exception as e:
                        if not self._dead(e) or self.learner_restarts >= self.plan.max_restarts:
                            raise RuntimeError(f"the learner failed: {_first_line(e)}") from None
                        self.learner_restarts += 1
                        print(f"robo ray: the learner died ({_first_line(e)}); restart {self.learner_restarts}, "
                              f"resuming {self.run_dir}", flush=True)
                        self.start_learner()
                        self.write_placement()
                    continue
                slot = next(s for s in self.slots if s.ref == ref)
                slot.ref = None
                try:
                    slot.code = int(self.ray.get(ref))
                except Exception as e:
                    if self._dead(e) and slot.restarts < self.plan.max_restarts:
                        slot.restarts += 1
                        print(f"robo ray: actor {slot.actor_id} died ({_first_line(e)}); restart {slot.restarts}"
                              + (f", taking {slot.robot}'s lease again" if slot.robot else ""), flush=True)
                        try:
                            self._start(slot)
                        except Exception as e2:  # restarts used up while it came back, or its node is gone
                            slot.error = _first_line(e2)
                            print(f"robo ray: actor {slot.actor_id} could not be restarted: {slot.error}", flush=True)
                            self.write_placement()
                        continue
                    slot.error = _first_line(e)
                    print(f"robo ray: actor {slot.actor_id} failed: {slot.error}", flush=True)
                self.write_placement()
            if self.slots and all(s.ref is None for s in self.slots) and all(s.code != 0 for s in self.slots):
                print("robo ray: every actor stopped before the learner finished; stopping the run", flush=True)
                self.ray.kill(self.learner, no_restart=True)
                return 1

    def finish(self, grace_s: float = 30.0) -> None:
        """Let actors take the learner's stop, then free every actor and placement group."""
        from ray.util.placement_group import remove_placement_group

        pending = [s.ref for s in self.slots if s.ref is not None]
        if pending:
            done, _ = self.ray.wait(pending, num_returns=len(pending), timeout=grace_s)
            for s in self.slots:
                if s.ref in done:
                    try:
                        s.code = int(self.ray.get(s.ref))
                    except Exception as e:
                        s.error = _first_line(e)
                    s.ref = None
        for h in [s.handle for s in self.slots] + ([self.learner] if self.learner is not None else []):
            try:
                self.ray.kill(h, no_restart=True)
            except Exception:
                pass
        for pg in self.pgs:
            try:
                remove_placement_group(pg)
            except Exception:
                pass
        if self.learner is not None and self.run_dir.is_dir():
            self.write_placement()


def _first_line(e: BaseException) -> str:
    """One line for an error: a Ray task error's own cause (e.g. `LeaseError: ...`), else its first line."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException):
        text = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {text[0] if text else ''}"
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def train_on_ray(algo: Any, cfg: Any, run_dir: str | Path, plan: RayPlan, *, resume: bool = False) -> int:
    """Run the spine's learner and actors where `plan` says (see the module docstring); returns the
    learner's exit code. The run folder (report, checkpoint, replay) is on the learner's node at the
    same path; `placement.json` beside it says where everything ran."""
    import yaml

    from robo.config import to_dict

    if plan.n_sim_actors + plan.actors_per_robot == 0:
        raise ValueError("--ray: no actors asked for: --actors N (simulated) and/or --actors-per-robot K")
    owned = not _ray_initialized()
    ray = connect(plan.address)
    run_dir = Path(run_dir).resolve()
    created = not run_dir.exists()
    run = _Run(ray, algo, cfg, run_dir, plan)
    run.config_yaml = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    code = 1
    try:
        robots = run.robots()  # refuse a held robot before anything starts
        run.place_learner()
        if resume:
            run.learner_argv.append("--resume")
        run.start_learner()
        run.place_actors(robots)
        print(f"robo ray: learner on {run.learner_where['node_ip']} (pid {run.learner_where['pid']}); "
              f"{len(run.slots)} actor(s): " + ", ".join(
                  f"{s.actor_id}:{s.robot or 'sim'}@{s.runs[-1]['node_ip']}" for s in run.slots), flush=True)
        code = run.supervise()
        return code
    finally:
        run.finish()
        if created and code != 0 and not (run_dir / "replay").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        if owned:
            ray.shutdown()


def placement_of(run_dir: str | Path) -> dict[str, Any]:
    """`<run>/placement.json`: where the learner and each actor ran."""
    return json.loads((Path(run_dir) / "placement.json").read_text())
