"""The actor process: run episodes with the latest weights, stream transitions to the learner.

    robo actor --algo reach --learner tcp://host:5560 --weights tcp://host:5561 --actor-id 0

Loop, per episode:
1. take the newest "weights" from the learner's PUB (latest-only; older queued ones are skipped);
   at start, ask for them over RPC ("weights_request") so a late joiner does not wait for a publish;
2. run one episode (`ActorAlgo.run_episode`), tag every row with the `policy_version` that produced
   it and the batch with a uid ("<actor>-<incarnation>-<episode>");
3. put it in a bounded outbox and send the outbox oldest-first; a batch leaves the outbox only when
   the learner acknowledged it (after its fsync). If the learner is down the actor keeps acting and
   keeps at most `outbox_episodes` batches (oldest dropped, counted), resending when the learner is
   back, so a disconnect loses at most the episode in flight when the actor itself dies.

When an ack says "hold" (the learner is more than its `max_lead` transitions behind on updates) the
actor waits between episodes, pinging the learner, until the hold is lifted; it keeps taking weights
meanwhile, so its next episode runs with the newest ones.

The actor stops when the learner says so ("stop" in an ack or on the PUB), after `n_episodes`, on
SIGTERM, or when the learner has been unreachable for `learner_timeout_s`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections import deque
from typing import Any

import numpy as np

from robo.runtime.algo import ActorAlgo, load_algo
from robo.transport import CurveConfig, PeerTimeout, RemoteError, RpcClient, Subscriber

log = logging.getLogger(__name__)

__all__ = ["Actor", "run_actor_process"]


class Actor:
    """Drives one `ActorAlgo` against a learner; see the module docstring."""

    def __init__(
        self,
        algo: ActorAlgo,
        learner: str,
        weights: str,
        *,
        actor_id: int = 0,
        curve: CurveConfig | None = None,
        outbox_episodes: int = 256,
        send_timeout_s: float = 1.0,
        learner_timeout_s: float = 60.0,
    ) -> None:
        self.algo = algo
        self.actor_id = actor_id
        self.name = f"actor{actor_id}-{os.getpid()}"
        self.client = RpcClient(learner, name=self.name, curve=curve, timeout_s=send_timeout_s, retries=0)
        self.sub = Subscriber(weights, name=self.name, curve=curve, hwm=2)
        self.outbox: deque[tuple[dict[str, np.ndarray], dict[str, Any]]] = deque()
        self.outbox_episodes = outbox_episodes
        self.learner_timeout_s = learner_timeout_s
        self.version = -1
        self.incarnation = -1
        self.session = uuid.uuid4().hex[:8]
        self.n_episodes = 0
        self.n_acked = 0
        self.n_dropped = 0
        self.n_weight_updates = 0
        self.last_contact = time.monotonic()
        self.stop_requested = False
        self.hold_requested = False
        self.held_s = 0.0
        self._stop = threading.Event()

    # ----------------------------------------------------------------------------------- weights
    def _apply(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        version, inc = int(meta.get("version", 0)), int(meta.get("incarnation", 0))
        if (inc, version) == (self.incarnation, self.version):
            return
        if inc == self.incarnation and version < self.version:
            return  # an older publish of the same learner
        self.algo.load_actor_state(arrays)
        self.version, self.incarnation = version, inc
        self.n_weight_updates += 1

    def poll_weights(self) -> None:
        """Apply the newest published weights, if any (non-blocking)."""
        msg = self.sub.latest(0.0)
        if msg is None:
            return
        if msg.kind == "weights":
            self._apply(msg.arrays, msg.meta)
        elif msg.kind == "heartbeat" and msg.meta.get("stop"):
            self.stop_requested = True

    def fetch_weights(self, timeout_s: float = 30.0) -> bool:
        """Ask the learner for its current weights over RPC (start-up, reconnects)."""
        t0 = time.monotonic()
        next_report = t0 + 10.0
        while time.monotonic() - t0 < timeout_s and not self._stop.is_set():
            try:
                msg = self.client.call(
                    "weights_request", None, {"version": self.version, "incarnation": self.incarnation}
                )
            except PeerTimeout:
                if time.monotonic() >= next_report:  # say why nothing happens while it is still trying
                    next_report += 10.0
                    log.warning(
                        "%s: no answer from the learner at %s for %.0f s (trying for up to %.0f s)",
                        self.name, self.client.endpoint, time.monotonic() - t0, timeout_s,
                    )
                continue
            self.last_contact = time.monotonic()
            if msg.kind == "weights":
                self._apply(msg.arrays, msg.meta)
            return True
        return False

    # ----------------------------------------------------------------------------------- transitions
    def _enqueue(self, rows: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        n = len(next(iter(rows.values())))
        rows = {**rows, "policy_version": np.full(n, self.version, np.int64)}
        meta = {
            "uid": f"{self.actor_id}-{self.session}-{self.n_episodes}",
            "actor": self.actor_id,
            "episode": self.n_episodes,
            "policy_version": self.version,
            "incarnation": self.incarnation,
            "n": n,
        }
        meta.update({k: v for k, v in info.items() if isinstance(v, (bool, int, float, str))})
        if len(self.outbox) >= self.outbox_episodes:
            self.outbox.popleft()
            self.n_dropped += 1
            log.warning("%s: outbox full (%d episodes); dropped the oldest", self.name, self.outbox_episodes)
        self.outbox.append((rows, meta))

    def flush(self) -> bool:
        """Send queued batches oldest-first until one is not acknowledged; True if the outbox is empty."""
        while self.outbox:
            rows, meta = self.outbox[0]
            try:
                ack = self.client.call("transitions", rows, meta)
            except PeerTimeout:
                self.client.reconnect()
                return False
            except RemoteError as e:
                log.error("%s: learner refused batch %s: %s (dropped)", self.name, meta["uid"], e)
                self.outbox.popleft()
                continue
            self.outbox.popleft()
            self.n_acked += 1
            self.last_contact = time.monotonic()
            if ack.meta.get("stop"):
                self.stop_requested = True
            self.hold_requested = bool(ack.meta.get("hold", False))
        return True

    def wait_while_held(self, poll_s: float = 0.02) -> bool:
        """Wait until the learner lifts its hold (or asks to stop); False if it became unreachable."""
        t0 = time.monotonic()
        while self.hold_requested and not self._stop.is_set() and not self.stop_requested:
            try:
                _, info = self.client.ping(timeout_s=1.0)
            except PeerTimeout:
                self.client.reconnect()
                if time.monotonic() - self.last_contact > self.learner_timeout_s:
                    return False
                continue
            self.last_contact = time.monotonic()
            self.hold_requested = bool(info.get("hold", False))
            self.poll_weights()
            if self.hold_requested:
                time.sleep(poll_s)
        self.held_s += time.monotonic() - t0
        return True

    # ----------------------------------------------------------------------------------- loop
    def run(self, n_episodes: int | None = None) -> int:
        """Act until stopped; returns 0, or 2 if the learner stayed unreachable."""
        log.info("%s: asking the learner at %s for weights", self.name, self.client.endpoint)
        if not self.fetch_weights(self.learner_timeout_s):
            log.error(
                "%s: learner at %s unreachable for %.0f s; is `robo learner` running there? "
                "(--learner-timeout-s to wait longer)",
                self.name, self.client.endpoint, self.learner_timeout_s,
            )
            return 2
        while not self._stop.is_set() and not self.stop_requested:
            if n_episodes is not None and self.n_episodes >= n_episodes:
                break
            self.poll_weights()
            rows, info = self.algo.run_episode()
            self._enqueue(rows, info)
            self.n_episodes += 1
            delivered = self.flush()
            if delivered and not self.wait_while_held():
                delivered = False
            if not delivered and time.monotonic() - self.last_contact > self.learner_timeout_s:
                log.error(
                    "%s: learner at %s unreachable for %.0f s; giving up",
                    self.name, self.client.endpoint, self.learner_timeout_s,
                )
                return 2
        end = time.monotonic() + 5.0  # best effort: deliver what is queued
        while self.outbox and time.monotonic() < end and not self.stop_requested:
            self.flush()
        log.info(
            "%s: %d episodes, %d acked, %d dropped, %d weight updates (v%d), %.1f s held by the learner",
            self.name,
            self.n_episodes,
            self.n_acked,
            self.n_dropped,
            self.n_weight_updates,
            self.version,
            self.held_s,
        )
        return 0

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.client.close()
        self.sub.close()


def run_actor_process(
    algo_name: str,
    config_path: str | None,
    learner: str,
    weights: str,
    *,
    actor_id: int = 0,
    seed: int = 0,
    n_episodes: int | None = None,
    curve: CurveConfig | None = None,
    learner_timeout_s: float = 60.0,
) -> int:
    """Entry point of `robo actor`."""
    algo = load_algo(algo_name).make_actor(config_path, actor_id, seed)
    actor = Actor(algo, learner, weights, actor_id=actor_id, curve=curve, learner_timeout_s=learner_timeout_s)
    signal.signal(signal.SIGTERM, lambda *_: actor.stop())
    try:
        return actor.run(n_episodes)
    finally:
        actor.close()
