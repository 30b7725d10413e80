"""The actor process: act with the latest weights, stream rows to the learner.

    robo actor --algo td3 --config cfg.yaml --learner tcp://host:5560 --weights tcp://host:5561 --actor-id 0

Plumbing only: acting is a `robo.learn.spine.Collector` (the same object the one-process loop
steps), handed in by the command. Loop, per batch:
1. take the newest "weights" from the learner's PUB (latest-only; older queued ones are skipped);
   at start, ask for them over RPC ("weights_request") so a late joiner does not wait for a publish;
2. step the collector until an episode ends (or `batch_rows` rows are ready, or an on-policy
   explorer completed its rollout), tag every row with the `policy_version` that produced it and
   the batch with a uid ("<actor>-<session>-<batch>");
3. put it in a bounded outbox and send the outbox oldest-first; a batch leaves the outbox only when
   the learner acknowledged it (after its fsync). If the learner is down the actor keeps acting and
   keeps at most `outbox_batches` batches (oldest dropped, counted), resending when the learner is
   back, so a disconnect loses at most the batch in flight when the actor itself dies. A batch the
   learner refuses (its rows do not match the algorithm's schema) is dropped and logged.

With `max_unacked_rows` (the command passes the config's `max_actor_lead`) the actor stops acting
while that many rows wait unacknowledged and resends until the learner answers: a learner busy with an
evaluation is not a learner that is down, and rows from ever older weights would break the pacing.

When an ack says "hold" (the learner is more than `max_actor_lead` rows behind its update schedule)
the actor waits between batches, pinging the learner, until the hold is lifted; it keeps taking
weights meanwhile, so its next batch is collected with the newest ones.

The actor stops when the learner says so ("stop" in an ack or on the PUB), after `n_batches`, on
SIGTERM, or when the learner has been unreachable for `learner_timeout_s`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from typing import Any, Protocol

import numpy as np

from robo.transport import CurveConfig, PeerTimeout, RemoteError, RpcClient, Subscriber

log = logging.getLogger(__name__)

__all__ = ["Actor", "Acting"]


class Acting(Protocol):
    """What the actor process needs of `robo.learn.spine.Collector`."""

    explorer: Any

    def load_weights(self, weights: dict[str, np.ndarray]) -> None: ...
    def step(self) -> Any: ...  # -> Collected(rows | None, successes, lengths, dropped, env_steps)


class Actor:
    """Drives one `Acting` collector against a learner; see the module docstring."""

    def __init__(
        self,
        collector: Acting,
        learner: str,
        weights: str,
        *,
        actor_id: int = 0,
        curve: CurveConfig | None = None,
        outbox_batches: int = 256,
        batch_rows: int = 256,
        send_timeout_s: float = 1.0,
        learner_timeout_s: float = 60.0,
        max_unacked_rows: int | None = None,
    ) -> None:
        self.collector = collector
        self.actor_id = actor_id
        self.name = f"actor{actor_id}-{os.getpid()}"
        self.client = RpcClient(learner, name=self.name, curve=curve, timeout_s=send_timeout_s, retries=0)
        self.sub = Subscriber(weights, name=self.name, curve=curve, hwm=2)
        self.outbox: deque[tuple[dict[str, np.ndarray], dict[str, Any]]] = deque()
        self.outbox_batches = outbox_batches
        self.batch_rows = batch_rows
        self.on_policy = bool(getattr(collector.explorer, "on_policy", False))
        self.learner_timeout_s = learner_timeout_s
        self.max_unacked_rows = max_unacked_rows
        self.version = -1
        self.incarnation = -1
        self.session = uuid.uuid4().hex[:8]
        self.n_batches = 0
        self.n_episodes = 0
        self.n_acked = 0
        self.n_refused = 0
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
        self.collector.load_weights(dict(arrays))
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
    def collect(self) -> tuple[dict[str, np.ndarray] | None, dict[str, Any]]:
        """Step the collector until a batch is ready: an episode ended with rows to send, `batch_rows`
        rows, or an on-policy rollout (sent at once: the learner trains on it before the next one)."""
        parts: list[dict[str, np.ndarray]] = []
        meta: dict[str, int] = {"n_episodes": 0, "n_success": 0, "length_sum": 0, "dropped": 0, "env_steps": 0}
        n = 0
        while not self._stop.is_set():
            got = self.collector.step()
            for k, v in got.meta().items():
                meta[k] += v
            if got.rows is not None:
                parts.append(got.rows)
                n += len(next(iter(got.rows.values())))
            if parts and (got.successes or n >= self.batch_rows or (self.on_policy and got.rows is not None)):
                break
        if not parts:
            return None, meta
        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return rows, meta

    def _enqueue(self, rows: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        n = len(next(iter(rows.values())))
        rows = {**rows, "policy_version": np.full(n, self.version, np.int64)}
        meta = {
            "uid": f"{self.actor_id}-{self.session}-{self.n_batches}",
            "actor": self.actor_id,
            "batch": self.n_batches,
            "policy_version": self.version,
            "incarnation": self.incarnation,
            "n": n,
        }
        meta.update({k: v for k, v in info.items() if isinstance(v, (bool, int, float, str))})
        if len(self.outbox) >= self.outbox_batches:
            self.outbox.popleft()
            self.n_dropped += 1
            log.warning("%s: outbox full (%d batches); dropped the oldest", self.name, self.outbox_batches)
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
                self.n_refused += 1
                continue
            self.outbox.popleft()
            self.n_acked += 1
            self.last_contact = time.monotonic()
            if ack.meta.get("stop"):
                self.stop_requested = True
            self.hold_requested = bool(ack.meta.get("hold", False))
        return True

    def unacked_rows(self) -> int:
        return sum(meta["n"] for _, meta in self.outbox)

    def wait_for_acks(self) -> bool:
        """With `max_unacked_rows` unacknowledged rows queued, stop acting and resend until the learner
        takes them (a busy learner, evaluating or checkpointing, does not answer for a while; acting on
        would train it on rows from ever older weights). False if it stayed unreachable."""
        if self.max_unacked_rows is None:
            return False
        t0 = time.monotonic()
        while self.unacked_rows() > self.max_unacked_rows and not self._stop.is_set() and not self.stop_requested:
            if self.flush():
                break
            if time.monotonic() - self.last_contact > self.learner_timeout_s:
                break
        self.held_s += time.monotonic() - t0
        return not self.outbox

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
    def run(self, n_batches: int | None = None) -> int:
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
            if n_batches is not None and self.n_batches >= n_batches:
                break
            self.poll_weights()
            rows, info = self.collect()
            if rows is None:
                break  # stopped while collecting
            self._enqueue(rows, info)
            self.n_batches += 1
            self.n_episodes += info["n_episodes"]
            delivered = self.flush()
            if not delivered:
                delivered = self.wait_for_acks()
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
            "%s: %d episodes in %d batches, %d acked, %d dropped, %d refused, %d weight updates (v%d), "
            "%.1f s held by the learner",
            self.name,
            self.n_episodes,
            self.n_batches,
            self.n_acked,
            self.n_dropped,
            self.n_refused,
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
