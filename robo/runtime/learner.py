"""The learner process: receive rows, validate and store them, train, publish versioned weights.

    robo learner --algo td3 --config cfg.yaml --run-dir runs/r1 --bind tcp://*:5560 --pub tcp://*:5561
    robo actor   --algo td3 --config cfg.yaml --learner tcp://host:5560 --weights tcp://host:5561 --actor-id 0

This module is plumbing only: the training itself is a `robo.learn.spine.LearnerCore` (the same
object the one-process `robo train --residual` drives), handed in by the command. Channels
(robo.transport):

- RPC (`bind`): "transitions" from actors -> validated against the algorithm's row schema (a bad
  batch gets an "error" reply with code "bad_rows" and is counted, never stored) -> appended to the
  run's segment store -> added to the algorithm -> one fsync for all waiting batches (group commit)
  -> "ack" {"uid", "stored", "n_rows", "stop", "hold"}. A resent batch (its ack was lost) is
  acknowledged without being stored twice. "config_request" -> "config" {"algo", "config"}: the
  resolved config actors act with. "weights_request" {"version", "incarnation"} ->
  "weights" when the learner has other weights, else "ack". Heartbeats answer with live stats.
- PUB (`pub`): "weights" {"version", "incarnation", "run", "step"} every `publish_every` updates and
  again after `republish_s` of silence (actors keep only the newest), and "heartbeat" {"stop": true}
  when training ends. `version` is the number of updates that produced the weights; `incarnation`
  counts resumes, so weights of a restarted learner supersede older ones even if its step went back.

Pacing both ways comes from the algorithm's config through the core: updates follow the
algorithm's update-to-data schedule, and acks/heartbeats say "hold" while the learner is more than
`max_actor_lead` rows behind it (actors then wait between batches). Evaluation on fixed seeds and
checkpoints run on the core's cadence, as in one process; `--resume` replays the stored rows.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from robo.transport import CurveConfig, Publisher, Request, RpcServer

log = logging.getLogger(__name__)

__all__ = ["Learner", "LearnerConfig", "TrainingCore"]


class TrainingCore(Protocol):
    """What the learner process needs of `robo.learn.spine.LearnerCore`."""

    state: dict[str, Any]

    @property
    def n_rows(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def train_success(self) -> float: ...
    def describe(self) -> dict[str, Any]: ...
    def seen(self, uid: str) -> bool: ...
    def add(self, rows: dict[str, Any], meta: dict[str, Any] | None = None) -> int: ...
    def sync(self) -> None: ...
    def updates_owed(self) -> int: ...
    def update(self) -> dict[str, float]: ...
    def hold(self) -> bool: ...
    def data_done(self) -> bool: ...
    def done(self) -> bool: ...
    def weights(self) -> dict[str, Any]: ...
    def periodic(self, extra: dict[str, Any] | None = None) -> None: ...
    def finish(self, **extra: Any) -> dict[str, Any]: ...
    def close(self) -> None: ...


@dataclass
class LearnerConfig:
    """Learner process settings (training hyper-parameters, pacing included, live in the algorithm's config)."""

    bind: str = "tcp://*:5560"
    """RPC endpoint actors send rows to."""
    pub: str = "tcp://*:5561"
    """PUB endpoint weights are broadcast on."""
    publish_every: int = 20
    """Publish weights every this many updates."""
    republish_s: float = 5.0
    """Re-send the current weights when nothing was published for this long (PUB drops for slow or
    late subscribers; actors ignore a version they already have)."""

    def __post_init__(self) -> None:
        if self.publish_every < 1:
            raise ValueError(f"publish_every={self.publish_every} must be >= 1")
        if self.republish_s <= 0:
            raise ValueError(f"republish_s={self.republish_s} must be > 0")


class Learner:
    """Serves one `TrainingCore` to actors; see the module docstring."""

    def __init__(self, core: TrainingCore, cfg: LearnerConfig, *, curve: CurveConfig | None = None) -> None:
        self.core = core
        self.cfg = cfg
        self.run_id = str(core.state.setdefault("run_id", f"{time.time_ns() & 0xFFFFFFFFFFFF:012x}"))
        self.incarnation = int(core.state.get("resumes", 0))  # +1 per resume
        self.n_refused = 0
        self.server = RpcServer(cfg.bind, name="learner", curve=curve, info=self._info())
        self.pub = Publisher(cfg.pub, name="learner", curve=curve)
        self.endpoint, self.pub_endpoint = self.server.endpoint, self.pub.endpoint
        self._last_publish = 0.0
        self._stop = threading.Event()

    # ----------------------------------------------------------------------------------- state
    def _info(self) -> dict[str, Any]:
        return {
            "n_rows": self.core.n_rows,
            "step": self.core.version,
            "version": self.core.version,
            "run": self.run_id,
            "incarnation": self.incarnation,
            "n_episodes": int(self.core.state.get("episodes", 0)),
            "n_refused": self.n_refused,
            "hold": self.core.hold(),
        }

    def _weights_meta(self) -> dict[str, Any]:
        v = self.core.version
        return {"version": v, "incarnation": self.incarnation, "run": self.run_id, "step": v}

    # ----------------------------------------------------------------------------------- traffic
    def _handle(self, req: Request, pending_acks: list[tuple[Request, dict[str, Any]]]) -> None:
        msg = req.msg
        if msg.kind == "transitions":
            uid = msg.meta.get("uid")
            if not isinstance(uid, str) or not msg.arrays:
                self.server.error(req, "bad_request", "transitions need arrays and meta['uid']")
                return
            stored = False
            if not self.core.seen(uid):
                meta = {k: v for k, v in msg.meta.items() if isinstance(v, (str, int, float, bool))}
                try:
                    self.core.add(dict(msg.arrays), meta)  # validated before it is stored
                except ValueError as e:
                    self.n_refused += 1
                    log.warning("refused batch %s from %s: %s", uid, req.peer, e)
                    self.server.error(req, "bad_rows", str(e))
                    return
                stored = True
            pending_acks.append((req, {"uid": uid, "stored": stored}))
        elif msg.kind == "config_request":  # actors act with the learner's resolved config
            self.server.reply(req, "config", None, self.core.describe())
        elif msg.kind == "weights_request":
            have = (msg.meta.get("incarnation", -1), msg.meta.get("version", -1))
            if have != (self.incarnation, self.core.version):
                self.server.reply(req, "weights", self.core.weights(), self._weights_meta())
            else:
                self.server.reply(req, "ack", None, {"version": self.core.version})
        else:
            self.server.error(req, "unsupported", f"learner does not handle '{msg.kind}'")

    def publish(self) -> None:
        self.pub.publish("weights", self.core.weights(), self._weights_meta())
        self._last_publish = time.monotonic()

    def _drain(self, timeout_s: float) -> None:
        """Handle every waiting request; rows are acknowledged after one fsync for all of them."""
        acks: list[tuple[Request, dict[str, Any]]] = []
        req = self.server.recv(timeout_s)
        while req is not None:
            self._handle(req, acks)
            req = self.server.recv(0) if len(acks) < 64 else None
        if acks:
            self.core.sync()
            done, hold = self.core.data_done(), self.core.hold()
            for r, meta in acks:
                self.server.reply(r, "ack", None, {**meta, "n_rows": self.core.n_rows, "stop": done, "hold": hold})
        self.server.info.update(self._info())

    # ----------------------------------------------------------------------------------- loop
    def run(self) -> int:
        """Serve and train until the budget of rows is stored and trained on (or `stop()`)."""
        log.info("learner on %s (weights on %s), run %s", self.endpoint, self.pub_endpoint, self.run_id)
        self.publish()
        published = self.core.version
        while not self._stop.is_set():
            owed = self.core.updates_owed()
            self._drain(0.0 if owed else 0.05)
            if owed:
                self.core.update()
                if self.core.version - published >= self.cfg.publish_every:
                    self.publish()
                    published = self.core.version
            elif self.core.done():
                break
            self.core.periodic({"refused": self.n_refused} if self.n_refused else None)
            if time.monotonic() - self._last_publish > self.cfg.republish_s:
                self.publish()
        if self._stop.is_set():  # SIGTERM: keep what was learnt, resumable; no final report
            self.core.finish(report=False)
            self._finish()
            return 0
        self.publish()
        self._finish()  # actors stop before the final evaluation takes the CPU
        self.core.finish(n_refused=self.n_refused)
        return 0

    def _finish(self, grace_s: float = 1.0) -> None:
        """Tell actors to stop (PUB + acks) for a short grace period."""
        end = time.monotonic() + grace_s
        while time.monotonic() < end:
            self.pub.publish("heartbeat", None, {"stop": True, **self._weights_meta()})
            self._drain(0.1)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.server.close()
        self.pub.close()
        self.core.close()
