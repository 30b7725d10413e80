"""The learner process: receive transitions, store them durably, train, publish versioned weights.

    robo learner --algo reach --run-dir runs/r1 --bind tcp://*:5560 --pub tcp://*:5561
    robo actor   --algo reach --learner tcp://host:5560 --weights tcp://host:5561 --actor-id 0

Channels (robo.transport):
- RPC (`bind`): "transitions" from actors -> appended to the segment store -> added to the
  algorithm's replay -> one fsync for all waiting batches (group commit) -> "ack" {"uid", "stored",
  "n_rows", "stop"}. Each batch carries a uid; a resent batch (its ack was lost) is acknowledged
  without being stored twice. "weights_request" {"version", "incarnation"} -> "weights" when the
  learner has other weights, else "ack". Heartbeats answer with live stats (n_rows, step, version,
  incarnation, run).
- PUB (`pub`): "weights" {"version", "incarnation", "run", "step"} every `publish_every` updates and
  again after `republish_s` of silence (actors keep only the newest), and "heartbeat" {"stop": true}
  when training ends. `version` is the update step that produced the weights; `incarnation` counts
  resumes, so weights of a restarted learner supersede older ones even if its step went back.

Durability and resume: transitions live in `run_dir/replay` (`robo.data.segments.SegmentStore`);
the algorithm state, step count and weights version are checkpointed to `run_dir/learner/state.pt`
by tmp + fsync + rename every `checkpoint_every` updates. After `kill -9`, `--resume` rebuilds the
replay from the segments (every acknowledged transition), restores the state and continues counting
steps from the checkpoint (updates after the last checkpoint are redone).

Updates are paced by data: `step <= utd * n_rows` (updates per stored transition); once
`total_env_steps` transitions are stored, actors are told to stop and the learner finishes its
update budget, checkpoints and exits. Data is paced by updates too: while the learner owes updates
for more than `max_lead` stored transitions, acks and heartbeats say "hold" and actors wait between
episodes, so fast simulated actors cannot fill the buffer with stale-policy data (real robots, slower
than the learner, never hold).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robo.data.segments import SegmentStore, atomic_write_bytes
from robo.runtime.algo import LearnerAlgo, load_algo
from robo.transport import CurveConfig, Publisher, Request, RpcServer

log = logging.getLogger(__name__)

__all__ = ["LearnerConfig", "Learner", "launch_local", "free_port", "run_learner_process", "training_curve"]


@dataclass
class LearnerConfig:
    """Learner process settings (the algorithm's own hyper-parameters live in its config)."""

    run_dir: Path
    """Run folder: replay/ (segments), learner/state.pt, learner/log.jsonl."""
    bind: str = "tcp://*:5560"
    """RPC endpoint actors send transitions to."""
    pub: str = "tcp://*:5561"
    """PUB endpoint weights are broadcast on."""
    total_env_steps: int = 0
    """Stop after this many stored transitions (0 = run until stopped)."""
    utd: float = 1.0
    """Updates per stored transition (update-to-data ratio)."""
    publish_every: int = 20
    """Publish weights every this many updates."""
    checkpoint_every: int = 200
    """Checkpoint algorithm state every this many updates (and at exit)."""
    republish_s: float = 5.0
    """Re-send the current weights when nothing was published for this long (PUB drops for slow or
    late subscribers; actors ignore a version they already have)."""
    max_lead: int = 0
    """Actors hold between episodes while more than this many stored transitions are still owed
    updates (`n_rows - step / utd`, counted once the algorithm is ready); 0 = never hold."""
    resume: bool = False
    """Continue from run_dir's buffer and checkpoint; without it an existing run_dir is refused."""
    seed: int = 0
    """Seed handed to the algorithm."""

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.total_env_steps < 0:
            raise ValueError(f"total_env_steps={self.total_env_steps} must be >= 0")
        if self.utd <= 0:
            raise ValueError(f"utd={self.utd} must be > 0")
        if self.max_lead < 0:
            raise ValueError(f"max_lead={self.max_lead} must be >= 0 (0 = actors never hold)")
        if self.publish_every < 1 or self.checkpoint_every < 1:
            raise ValueError("publish_every and checkpoint_every must be >= 1")


def _to_torch(obj: Any) -> Any:
    import torch

    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.require(obj, requirements="C"))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_torch(v) for v in obj)
    return obj


class Learner:
    """Runs the learner loop for one `LearnerAlgo`; see the module docstring."""

    def __init__(self, algo: LearnerAlgo, cfg: LearnerConfig, *, curve: CurveConfig | None = None) -> None:
        self.algo = algo
        self.cfg = cfg
        state_dir = cfg.run_dir / "learner"
        self.state_path = state_dir / "state.pt"
        if not cfg.resume and (cfg.run_dir / "replay").exists():
            raise ValueError(f"{cfg.run_dir} already holds a run; pass --resume to continue it or choose another")
        if cfg.resume and not (cfg.run_dir / "replay").is_dir():  # a mistyped path must not start afresh
            raise ValueError(f"cannot resume: {cfg.run_dir / 'replay'} not found (no learner ran in {cfg.run_dir})")
        state_dir.mkdir(parents=True, exist_ok=True)
        self.store = SegmentStore(cfg.run_dir / "replay")
        self.step = 0
        self.version = 0
        self.run_id = uuid.uuid4().hex[:12]
        self.incarnation = 0  # +1 per resume: weights of a restarted learner supersede any older ones
        self.n_episodes = 0
        self.successes: deque[bool] = deque(maxlen=100)
        if cfg.resume:
            self._resume()
        self.server = RpcServer(cfg.bind, name="learner", curve=curve, info=self._info())
        self.pub = Publisher(cfg.pub, name="learner", curve=curve)
        self.endpoint, self.pub_endpoint = self.server.endpoint, self.pub.endpoint
        self._log = open(state_dir / "log.jsonl", "a")
        self._t_start = time.monotonic()
        self._last_publish = 0.0
        self._stop = threading.Event()

    # ----------------------------------------------------------------------------------- state
    def _info(self) -> dict[str, Any]:
        return {
            "n_rows": len(self.store),
            "step": self.step,
            "version": self.version,
            "run": self.run_id,
            "incarnation": self.incarnation,
            "n_episodes": self.n_episodes,
            "hold": self._hold(),
        }

    def _hold(self) -> bool:
        """True while actors should wait: the learner owes updates for more than `max_lead` transitions."""
        if self.cfg.max_lead <= 0 or self._done() or not self.algo.ready():
            return False
        return len(self.store) - self.step / self.cfg.utd > self.cfg.max_lead

    def _resume(self) -> None:
        t0 = time.monotonic()
        for rows, meta in self.store:
            self.algo.add(rows)
            self.n_episodes += 1
            if "success" in meta:
                self.successes.append(bool(meta["success"]))
        if self.state_path.exists():
            import torch

            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
            self.algo.load_state_dict(state["algo"])
            self.step, self.version, self.run_id = int(state["step"]), int(state["version"]), str(state["run"])
            self.incarnation = int(state.get("incarnation", 0)) + 1
        log.info(
            "resumed %s: %d transitions in %d records, step %d, weights v%d (%.1f s)",
            self.cfg.run_dir,
            len(self.store),
            len(self.store.records),
            self.step,
            self.version,
            time.monotonic() - t0,
        )

    def checkpoint(self) -> None:
        """Algorithm state + counters -> learner/state.pt (tmp + fsync + rename)."""
        import io

        import torch

        state = {
            "algo": _to_torch(self.algo.state_dict()),
            "step": self.step,
            "version": self.version,
            "run": self.run_id,
            "n_rows": len(self.store),
            "incarnation": self.incarnation,
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.state_path, buf.getvalue())

    # ----------------------------------------------------------------------------------- traffic
    def _handle(self, req: Request, pending_acks: list[tuple[Request, dict[str, Any]]]) -> None:
        msg = req.msg
        if msg.kind == "transitions":
            uid = msg.meta.get("uid")
            if not isinstance(uid, str) or not msg.arrays:
                self.server.error(req, "bad_request", "transitions need arrays and meta['uid']")
                return
            stored = False
            if not self.store.has_uid(uid):
                rows = {k: np.asarray(v) for k, v in msg.arrays.items()}
                meta = {k: v for k, v in msg.meta.items() if isinstance(v, (str, int, float, bool))}
                try:
                    self.store.append(rows, meta, sync=False)  # fsync'd before the ack (group commit)
                except ValueError as e:
                    self.server.error(req, "bad_request", str(e))
                    return
                self.algo.add(rows)
                stored = True
                self.n_episodes += 1
                if "success" in meta:
                    self.successes.append(bool(meta["success"]))
            pending_acks.append((req, {"uid": uid, "stored": stored}))
        elif msg.kind == "weights_request":
            have = (msg.meta.get("incarnation", -1), msg.meta.get("version", -1))
            if have != (self.incarnation, self.version):
                self.server.reply(req, "weights", self.algo.actor_state(), self._weights_meta())
            else:
                self.server.reply(req, "ack", None, {"version": self.version})
        else:
            self.server.error(req, "unsupported", f"learner does not handle '{msg.kind}'")

    def _weights_meta(self) -> dict[str, Any]:
        return {"version": self.version, "incarnation": self.incarnation, "run": self.run_id, "step": self.step}

    def publish(self) -> None:
        self.version = self.step
        self.pub.publish("weights", self.algo.actor_state(), self._weights_meta())
        self._last_publish = time.monotonic()

    def _done(self) -> bool:
        return self.cfg.total_env_steps > 0 and len(self.store) >= self.cfg.total_env_steps

    def _drain(self, timeout_s: float) -> None:
        """Handle every waiting request; transitions are acknowledged after one fsync for all of them."""
        acks: list[tuple[Request, dict[str, Any]]] = []
        req = self.server.recv(timeout_s)
        while req is not None:
            self._handle(req, acks)
            req = self.server.recv(0) if len(acks) < 64 else None
        if acks:
            self.store.sync()
            done, hold = self._done(), self._hold()
            for r, meta in acks:
                self.server.reply(r, "ack", None, {**meta, "n_rows": len(self.store), "stop": done, "hold": hold})
        self.server.info.update(self._info())

    # ----------------------------------------------------------------------------------- loop
    def run(self) -> int:
        """Serve and train until `total_env_steps` transitions are stored (or `stop()`)."""
        log.info("learner on %s (weights on %s), run %s", self.endpoint, self.pub_endpoint, self.run_id)
        self.publish()
        last_ckpt, last_log = self.step, time.monotonic()
        while not self._stop.is_set():
            budget = int(self.cfg.utd * len(self.store)) - self.step
            can_update = budget > 0 and self.algo.ready()  # after the data target: finish the budget
            self._drain(0.0 if can_update else 0.05)
            if can_update:
                metrics = self.algo.update()
                self.step += 1
                if self.step % self.cfg.publish_every == 0:
                    self.publish()
                if self.step - last_ckpt >= self.cfg.checkpoint_every:
                    self.checkpoint()
                    last_ckpt = self.step
                if time.monotonic() - last_log > 2.0:
                    self._write_log(metrics)
                    last_log = time.monotonic()
            elif self._done():
                break
            if time.monotonic() - self._last_publish > self.cfg.republish_s:
                self.pub.publish("weights", self.algo.actor_state(), self._weights_meta())
                self._last_publish = time.monotonic()
        self.publish()
        self.checkpoint()
        finish = getattr(self.algo, "finish", None)
        if callable(finish):
            finish()  # algorithm-specific final artefacts (e.g. residual_actor.pt)
        self._write_log({})
        self._finish()
        return 0

    def _write_log(self, metrics: dict[str, float]) -> None:
        row = {
            **self._info(),
            "success_rate": float(np.mean(self.successes)) if self.successes else None,
            "time_s": round(time.monotonic() - self._t_start, 3),
            **metrics,
        }
        self._log.write(json.dumps(row) + "\n")
        self._log.flush()
        log.info(
            "step %d  rows %d  v%d  success %.2f", self.step, len(self.store), self.version, row["success_rate"] or 0.0
        )

    def _finish(self, grace_s: float = 1.0) -> None:
        """Tell actors to stop (PUB + acks) for a short grace period, then close everything."""
        end = time.monotonic() + grace_s
        while time.monotonic() < end:
            self.pub.publish("heartbeat", None, {"stop": True, **self._weights_meta()})
            self._drain(0.1)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.server.close()
        self.pub.close()
        self.store.close()
        self._log.close()


def training_curve(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """[{"env_steps", "success_rate"}] from learner/log.jsonl: the actors' success over their last
    100 episodes (with exploration noise) against stored transitions, one point per log line."""
    path = Path(run_dir) / "learner" / "log.jsonl"
    curve = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash
        if row.get("success_rate") is not None:
            curve.append({"env_steps": float(row["n_rows"]), "success_rate": float(row["success_rate"])})
    return curve


# ========================================================================================= launching
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host` (for local launches and tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def run_learner_process(
    algo_name: str,
    config_path: str | None,
    cfg: LearnerConfig,
    curve: CurveConfig | None = None,
    ready_file: Path | None = None,
) -> int:
    """Entry point of `robo learner`: build the algorithm, serve, handle SIGTERM."""
    import torch  # noqa: F401  (imported up front: checkpoints must not stall the loop on first use)

    algo = load_algo(algo_name).make_learner(config_path, cfg.run_dir, cfg.seed)
    learner = Learner(algo, cfg, curve=curve)
    signal.signal(signal.SIGTERM, lambda *_: learner.stop())
    if ready_file is not None:
        atomic_write_bytes(
            Path(ready_file), json.dumps({"rpc": learner.endpoint, "pub": learner.pub_endpoint}).encode()
        )
    try:
        return learner.run()
    finally:
        learner.close()


def _save_cfg(cfg: Any, path: Path) -> str | None:
    if cfg is None:
        return None
    if isinstance(cfg, (str, Path)):
        return str(cfg)
    try:
        from robo.config import save_config

        save_config(cfg, path)
    except Exception:  # plain dataclass without the robo config helpers
        import yaml

        path.write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    return str(path)


def launch_local(
    cfg: Any,
    n_actors: int,
    *,
    run_dir: str | os.PathLike | None = None,
    algo: str = "residual",
    total_env_steps: int | None = None,
    resume: bool = False,
    utd: float | None = None,
    checkpoint_every: int | None = None,
    max_lead: int | None = None,
    seed: int | None = None,
    timeout_s: float | None = None,
    extra_learner_args: list[str] | None = None,
) -> int:
    """`robo train --residual --actors N`: one learner and N actor processes on this machine.

    `cfg` is the algorithm's config (a dataclass, written to run_dir/config.yaml and passed to every
    process) or a YAML path or None. Returns the learner's exit code; actors are stopped when it ends.
    """
    if n_actors < 1:
        raise ValueError(f"n_actors={n_actors} must be >= 1")
    if algo == "residual" and cfg is not None and type(cfg).__name__ != "ResidualTD3Config":
        raise ValueError("--actors runs the off-policy residual learner (--algo td3); residual PPO runs embedded only")
    if utd is None:
        utd = float(getattr(cfg, "utd", 1) or 1)  # residual: critic updates per env step
    if checkpoint_every is None:
        checkpoint_every = int(getattr(cfg, "checkpoint_every", 0) * utd) or 200  # env steps -> updates
    if max_lead is None:
        max_lead = int(getattr(cfg, "max_actor_lead", 0) or 0)
    run_dir = Path(
        run_dir if run_dir is not None else getattr(cfg, "run_dir", None) or f"runs/async-{int(time.time())}"
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = _save_cfg(cfg, run_dir / "config.yaml")
    seed = int(getattr(cfg, "seed", 0) if seed is None else seed)
    if total_env_steps is None:
        total_env_steps = int(getattr(cfg, "total_env_steps", 0) or 0)
    rpc, pub = free_port(), free_port()
    ready = run_dir / "learner" / "endpoints.json"
    ready.unlink(missing_ok=True)
    base = [sys.executable, "-m", "robo.cli"]
    common = ["--algo", algo] + (["--config", config_path] if config_path else [])
    learner_cmd = base + [
        "learner",
        *common,
        "--run-dir",
        str(run_dir),
        "--bind",
        f"tcp://127.0.0.1:{rpc}",
        "--pub",
        f"tcp://127.0.0.1:{pub}",
        "--total-env-steps",
        str(total_env_steps),
        "--utd",
        str(utd),
        "--seed",
        str(seed),
        "--ready-file",
        str(ready),
        "--checkpoint-every",
        str(checkpoint_every),
        "--max-lead",
        str(max_lead),
    ]
    learner_cmd += (["--resume"] if resume else []) + list(extra_learner_args or [])
    procs: list[subprocess.Popen] = []
    learner = subprocess.Popen(learner_cmd)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if learner.poll() is not None:
                return int(learner.returncode)
            if time.monotonic() > deadline:
                raise RuntimeError("learner did not start within 120 s")
            time.sleep(0.05)
        for i in range(n_actors):
            cmd = base + [
                "actor",
                *common,
                "--learner",
                f"tcp://127.0.0.1:{rpc}",
                "--weights",
                f"tcp://127.0.0.1:{pub}",
                "--actor-id",
                str(i),
                "--seed",
                str(seed),
            ]
            procs.append(subprocess.Popen(cmd))
        print(
            f"robo: learner pid {learner.pid} + {n_actors} actor(s) {[p.pid for p in procs]}; run dir {run_dir}",
            flush=True,
        )
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while learner.poll() is None:
            if all(p.poll() is not None for p in procs) and any(p.returncode != 0 for p in procs):
                codes = [p.returncode for p in procs]
                print(f"robo: all actors exited (codes {codes}) before the learner finished; stopping it", flush=True)
                learner.terminate()
                learner.wait(30)
                return 1
            if end is not None and time.monotonic() > end:
                learner.terminate()
                learner.wait(30)
                return 124
            time.sleep(0.2)
        return int(learner.returncode)
    finally:
        for p in procs:
            try:
                p.wait(timeout=5)  # actors stop on the learner's stop message
            except subprocess.TimeoutExpired:
                p.terminate()
        for p in [learner, *procs]:
            if p.poll() is None:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
