"""The one contract every device implements: a `Resource`.

A resource is an arm, gripper, humanoid, camera or teleop device. Sim and real devices implement the
same class. Constructors never touch hardware; `connect()` does. Every resource reports:

    res.connect() / res.close()        # also a context manager
    res.health() -> Health             # works connected or not (not connected = cheap probe)
    res.spec() -> Spec                 # the arrays it produces / consumes (robo.spec)
    res.metadata() -> dict             # type, kind, name, serial, model, firmware, ...
    res.lease(mode) -> Lease           # exclusive for actuators; cameras may be leased "shared"

Actuators (`Arm`, grippers, humanoids) refuse to move unless this process holds their exclusive
lease (`robo.hal.lease`). Units are SI; timestamps are host wall-clock seconds (`time.time()`).
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import heapq
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from robo.hal import lease as _lease
from robo.spec import Spec

Kind = Literal["arm", "gripper", "humanoid", "camera", "teleop", "sensor"]
HealthStatus = Literal["ok", "degraded", "down", "offline", "unknown"]


def now() -> float:
    """Host wall-clock time in seconds; the single clock every robo timestamp is expressed in."""
    return time.time()


@dataclass
class Health:
    """What a resource says about itself.

    status: ok (working), degraded (working with problems, e.g. dropped frames), down (connected but
    failing), offline (not connected; `detail` says whether the device is present), unknown.
    """

    status: HealthStatus
    detail: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}" if self.detail else self.status


@dataclass
class DeviceInfo:
    """One attached (or configured) device found by discovery."""

    type: str  # registered driver name that can open it
    id: str  # serial, device path, or cell/name for sim devices
    name: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Resource(abc.ABC):
    """Base class of every device. Subclasses set `kind`, `config_class` and are `@register`ed."""

    kind: ClassVar[str] = "sensor"
    type_name: ClassVar[str] = ""  # set by robo.hal.registry.register
    config_class: ClassVar[type | None] = None
    actuator: ClassVar[bool] = False
    simulated: ClassVar[bool] = False  # a sim device (listed by discovery from the configured cells)
    # names of peers this resource needs wired in a cell (e.g. a MuJoCo camera needs its "sim")
    required_wiring: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None, *, name: str | None = None, cell: str | None = None) -> None:
        if config is None and self.config_class is not None:
            config = self.config_class()
        self.config = config
        self.name = name or self.type_name or type(self).__name__.lower()
        self.cell = cell
        self.peers: dict[str, Resource] = {}
        self._connected = False
        self._lease: _lease.Lease | None = None

    # ---------------------------------------------------------------- lifecycle
    def connect(self) -> None:
        """Open the device. Idempotent."""
        if self._connected:
            return
        self._connect()
        self._connected = True

    def close(self) -> None:
        """Release the device (not the lease). Idempotent; never raises for an unconnected resource."""
        if not self._connected:
            return
        try:
            self._close()
        finally:
            self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def __enter__(self) -> Resource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    # ---------------------------------------------------------------- description
    @abc.abstractmethod
    def spec(self) -> Spec:
        """Features this resource produces (observations) or consumes (`action`)."""

    def health(self) -> Health:
        if not self._connected:
            return Health("offline", "not connected")
        return Health("ok")

    def metadata(self) -> dict[str, Any]:
        """Static facts: type, kind, name, lease key, plus driver-specific ones (serial, model...)."""
        out: dict[str, Any] = {"type": self.type_name, "kind": self.kind, "name": self.name, "key": self.lease_key}
        if self.cell:
            out["cell"] = self.cell
        if self.config is not None and dataclasses.is_dataclass(self.config):
            out["config"] = dataclasses.asdict(self.config)
        return out

    @property
    def lease_key(self) -> str:
        """Identity of the physical device, used for leases across processes and cells.

        Drivers with a hardware identity (serial, IP, device path) override this so two cells naming
        the same camera by different names still contend for one lease. Sim devices use cell/name.
        """
        return f"{self.type_name}:{self.cell or 'local'}/{self.name}"

    @classmethod
    def discover(cls) -> list[DeviceInfo]:
        """Devices of this type attached to this machine (default: none discoverable)."""
        return []

    def bind(self, peers: Mapping[str, Resource]) -> None:
        """Wire peers (role -> resource) named in a cell's `wiring:` section."""
        missing = [r for r in self.required_wiring if r not in peers]
        if missing:
            raise ValueError(f"{self.type_name} '{self.name}' needs wiring.{missing[0]} naming a resource of the cell")
        self.peers = dict(peers)

    # ---------------------------------------------------------------- leases
    @property
    def default_lease_mode(self) -> _lease.Mode:
        return "shared" if self.kind in ("camera", "sensor") else "exclusive"

    def lease(
        self, mode: _lease.Mode | None = None, *, timeout: float = 0.0, job: str | None = None
    ) -> _lease.Lease:
        """Take this resource's lease for the calling process (and keep it on the resource).

        Actuators can only be leased exclusively. Raises `LeaseError` naming the holder when it is
        taken. The lease is released with `lease.release()`, on process exit, or when we die.
        """
        mode = mode or self.default_lease_mode
        if self.actuator and mode != "exclusive":
            raise ValueError(f"{self.type_name} '{self.name}' is an actuator: it can only be leased exclusively")
        if self._lease is not None and self._lease.held and self._lease.mode == mode:
            return self._lease
        held = _lease.acquire(self.lease_key, mode, timeout=timeout, job=job)
        self._lease = held
        return held

    def adopt_lease(self, held: _lease.Lease) -> None:
        """Attach a lease taken elsewhere (e.g. by `Cell.acquire`) for this resource's key."""
        if held.key != self.lease_key:
            raise ValueError(f"lease for '{held.key}' does not cover resource '{self.lease_key}'")
        self._lease = held

    def release_lease(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def require_lease(self, action: str = "command") -> None:
        """Raise LeaseError unless this process holds the resource's exclusive lease."""
        if self._lease is None or not self._lease.held or self._lease.mode != "exclusive":
            raise _lease.LeaseError(
                f"cannot {action} {self.type_name} '{self.name}': this process holds no exclusive lease on "
                f"'{self.lease_key}' (take one with resource.lease() or Cell.acquire())"
            )

    def __repr__(self) -> str:
        state = "connected" if self._connected else "closed"
        return f"<{type(self).__name__} {self.name!r} type={self.type_name} {state}>"


@dataclass(frozen=True)
class Executed:
    """One action `exec_actions` sent: when it was due, when it went out, what was asked, what was sent."""

    t_due: float
    t_sent: float
    action: np.ndarray
    sent: np.ndarray


class Arm(Resource):
    """A manipulator (sim or real). Actuator: commands need the exclusive lease.

    Synchronous use (teleop, simple loops):
        obs = arm.get_observation()                # flat dict, robo.spec keys
        sent = arm.send_action(action)             # returns the command actually sent after limits
    Timestamped, asynchronous use (policies):
        obs, t = arm.get_obs()                     # t: host time the state was measured
        arm.exec_actions(actions, t_exec)          # (Ta, Da) with (Ta,) host times; see below
    """

    kind: ClassVar[str] = "arm"
    actuator: ClassVar[bool] = True

    def __init__(self, config: Any = None, *, name: str | None = None, cell: str | None = None) -> None:
        super().__init__(config, name=name, cell=cell)
        self._sched: list[tuple[float, int, np.ndarray]] = []
        self._sched_cv = threading.Condition()
        self._sched_thread: threading.Thread | None = None
        self._sched_stop = False
        self._sched_counter = 0
        self._late_s = 0.05
        self._exec_error: BaseException | None = None
        self.n_late_actions = 0
        self.n_executed_actions = 0
        self.executed: collections.deque[Executed] = collections.deque(maxlen=10_000)
        """What `exec_actions` sent, newest last (latency, and checking recordings against it)."""

    @abc.abstractmethod
    def get_observation(self) -> dict[str, np.ndarray]:
        """Current measured state, e.g. {"observation.state": (Ds,) float32}."""

    @abc.abstractmethod
    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Command one action now. Returns the action actually sent after limits (same shape)."""

    def get_obs(self) -> tuple[dict[str, np.ndarray], float]:
        t = now()
        return self.get_observation(), t

    def exec_actions(self, actions: np.ndarray, t_exec: Sequence[float], *, late_s: float = 0.05) -> None:
        """Schedule `actions` (Ta, Da) at host times `t_exec` (Ta,), returning immediately.

        Preemption: a call replaces every still-queued action scheduled at or after its first time
        `t_exec[0]`; earlier queued actions still run. An action that cannot be sent within `late_s`
        of its time is dropped and counted in `n_late_actions`. Requires the exclusive lease.
        """
        self.require_lease("execute actions on")
        actions = np.asarray(actions, dtype=np.float32)
        t_exec = np.asarray(t_exec, dtype=np.float64)
        if actions.ndim != 2 or len(actions) != len(t_exec):
            raise ValueError(f"exec_actions: actions {actions.shape} and t_exec {t_exec.shape} do not match")
        if len(t_exec) == 0:
            return
        if np.any(np.diff(t_exec) < 0):
            raise ValueError("exec_actions: t_exec must be non-decreasing")
        with self._sched_cv:
            t0 = float(t_exec[0])
            self._sched = [e for e in self._sched if e[0] < t0]
            heapq.heapify(self._sched)
            for a, t in zip(actions, t_exec):
                self._sched_counter += 1
                heapq.heappush(self._sched, (float(t), self._sched_counter, a))
            self._late_s = late_s
            if self._sched_thread is None or not self._sched_thread.is_alive():
                self._sched_stop = False
                self._sched_thread = threading.Thread(
                    target=self._run_schedule, name=f"{self.name}-exec", daemon=True
                )
                self._sched_thread.start()
            self._sched_cv.notify_all()

    def pending_actions(self) -> int:
        with self._sched_cv:
            return len(self._sched)

    def cancel_actions(self) -> None:
        """Drop every queued action (the arm holds its last target)."""
        with self._sched_cv:
            self._sched.clear()
            self._sched_cv.notify_all()

    def _run_schedule(self) -> None:
        while True:
            with self._sched_cv:
                while not self._sched_stop and not self._sched:
                    self._sched_cv.wait(0.5)
                if self._sched_stop:
                    return
                t, _, a = self._sched[0]
                wait = t - now()
                if wait > 0:
                    self._sched_cv.wait(min(wait, 0.5))
                    continue
                heapq.heappop(self._sched)
                late = -wait > self._late_s
            if late:
                self.n_late_actions += 1
                continue
            try:
                t_sent = now()
                sent = self.send_action(a)
                self.executed.append(Executed(t, t_sent, a, np.asarray(sent)))
                self.n_executed_actions += 1
            except Exception as e:  # keep the worker alive; surface through health()
                self._exec_error = e

    # ---------------------------------------------------------------- holding still
    @property
    def held(self) -> bool:
        """True while the arm's controller holds on its own (a real-time controller's watchdog hold)."""
        return False

    def hold(self, timeout_s: float | None = None) -> bool:
        """Stop commanding: drop queued actions and return once the arm holds still under its own
        control. True when the hold is confirmed (arms without a loop of their own stop with the
        commands; real-time arms wait for their controller's hold, see robo.hal.controlled)."""
        self.cancel_actions()
        return True

    def rearm(self) -> None:
        """Leave a hold, so that new commands are accepted again (no-op when there is none)."""

    def move_home(self, timeout_s: float = 20.0) -> bool:
        """Move to the home pose through the controller; True once there."""
        raise NotImplementedError(f"{self.type_name} '{self.name}' cannot move home")

    def controller_status(self) -> dict[str, Any]:
        """The controller's own view (mode, hold, event counters), for reports; {} without one."""
        return {}

    def _stop_schedule(self) -> None:
        with self._sched_cv:
            self._sched_stop = True
            self._sched.clear()
            self._sched_cv.notify_all()
        if self._sched_thread is not None:
            self._sched_thread.join(timeout=2.0)
            self._sched_thread = None

    def close(self) -> None:
        self._stop_schedule()
        super().close()
