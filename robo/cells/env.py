"""A cell as a Gymnasium environment: the one env type for sim and real workstations.

    env = CellEnv("configs/cells/sim_panda.yaml", "PandaLift-v0")      # a sim cell running a task
    env = CellEnv("configs/cells/franka_lab.yaml", "lift the cube")    # a real cell: the operator judges
    obs, info = env.reset(seed=0)      # leases + connects on first use; reset procedure; first observation
    obs, r, terminated, truncated, info = env.step(action)                 # real time, one control period
    env.close()                        # the controller holds, devices close, the lease is released

Registered as Gymnasium id `robo/Cell-v0` (kwargs as above), so everything that makes envs by id
(`robo.learn.evaluate`, `ResidualVecEnv` through an env factory, `ChunkExecutor`) runs a cell as it
runs a task.

Observation: the dataset's spec, so a BC checkpoint trained on `robo collect --cell` data fits it:
`observation.state` (a sim cell: the task's state vector, computed from the scene as the fast path
does; a real cell: the arm's state) and `observation.images.<camera>` for the cell's cameras (all, or
those named), aligned by capture timestamp. Action: `Box` in the arm's units (a sim cell: the task's).

`step(action)`, real time: the action is checked (shape, finite, within the Box: anything else raises
`UnsafeActionError` and is never sent; the C++ controller still rejects NaN/out-of-range targets if
something else sends one), sent through the arm's timestamped `exec_actions` (to run now), then the env
waits for the next control period (`1 / control_hz` after the previous observation; a step that
arrives late is counted, never caught up with a burst) and observes. `info["latency"]` says how old
the observation was when the action was decided (`obs_age_s`) and how long the action waited before
the arm sent it to the controller (`cmd_age_s`); `info["executed"]` is what went to the controller
(None if the arm dropped the action as more than a period late: the episode then ends, `info["dropped"]`).

Episode boundaries. Reset: a sim cell places the task's initial state for the seed (the loop stops
for it, then runs again); a real cell moves home through the controller and waits for the operator's
"go". Success: the task's test on a sim cell; on a real cell `success_fn(obs)` when given, else the
operator's marks (y success, n failure; robo.cells.operator). Time limit: the task's, else
`max_steps`. The operator may pause (the controller holds; the step blocks until resume) or stop
(the controller holds, `OperatorStop` is raised). If the controller's watchdog has put it in a hold
(the loop was starved), the episode ends at once (`truncated`, `info["hold"]`): its actions are not
sent into a hold, and the next reset rearms.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robo.cells.operator import Operator, OperatorStop
from robo.config import read_yaml
from robo.hal.align import AlignmentError, CameraGroup, align_frames
from robo.hal.cell import Cell, resolve_cell_path
from robo.hal.resource import Arm, now
from robo.spec import ACTION, IMAGE_PREFIX, STATE, Feature, Spec

__all__ = ["CellEnv", "CellLog", "UnsafeActionError", "cell_env_fn"]

SuccessFn = Callable[[dict[str, np.ndarray]], bool]
STATE_BOUND = 10.0  # finite, never-binding Box bounds of the state (m, rad, unitless)
DEFAULT_MAX_STEPS = 300  # a real cell without a task: 30 s at 10 Hz


class UnsafeActionError(ValueError):
    """An action that must not reach the robot (wrong shape, NaN/inf, outside the action bounds)."""


class CellLog:
    """Per-step records of one or more CellEnvs, for reports: latencies, what the arm executed, and the
    controller's own final state when each env closed. Pass one to several envs (`log=`) to pool them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.controllers: list[dict[str, Any]] = []

    def add(self, **row: Any) -> None:
        self.rows.append(row)

    def latency_ms(self, key: str, q: float) -> float:
        """Percentile `q` of `obs_age_s` / `cmd_age_s` over the logged steps, in ms (nan when empty)."""
        v = np.array([r[key] for r in self.rows if np.isfinite(r[key])], np.float64)
        return float(np.percentile(v, q) * 1e3) if len(v) else float("nan")

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": len(self.rows), "late_steps": int(sum(r["late"] for r in self.rows))}
        for key in ("obs_age_s", "cmd_age_s"):
            name = key.replace("_s", "_ms")
            out[name] = {"p50": self.latency_ms(key, 50), "p99": self.latency_ms(key, 99)}
        out["controller"] = self.controllers
        return out

    def save(self, path: str | Path) -> None:
        """The steps as arrays (npz, atomic): env, episode, step, t_obs, t_sent, obs_age_s, cmd_age_s,
        late, action (n, Da) as given to step(), dispatched (n, Da) as the arm's exec thread passed it to
        send_action, sent (n, Da) as send_action reported it went to the controller (after the arm's limits)."""
        from robo.data.atomic import atomic_path

        if not self.rows:
            return
        cols = {k: np.array([r[k] for r in self.rows]) for k in self.rows[0]}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **cols)


class CellEnv(gym.Env):
    """One cell (YAML) as a real-time Gymnasium env; see the module docstring.

    Args:
        cell: cell YAML path or name (configs/cells/<name>.yaml), or a loaded `Cell`.
        task_id: a sim cell: the Gymnasium task it runs (scene, reset, success; required); a real cell: a
            description of the task for datasets and reports (a Gymnasium id gives its description).
        arm: the arm resource to drive (default: the cell's only arm).
        cameras: camera resources observed (default: every camera of the cell; () none).
        instance: sim cells only: > 0 runs another copy of the cell (its own leases, `<name>-<i>`);
            "auto": the first copy this process has not opened yet (parallel evaluation on a sim cell).
        max_steps: time limit in steps (default: the task's, else 300).
        success_fn: a real cell's success predicate on the observation (default: the operator's marks).
        operator: where go / success / pause / stop come from (default: nobody; scripts push events).
        wait_go: wait for the operator's "go" after each reset (default: when the operator judges).
        camera_tolerance_s: largest capture-time skew between aligned cameras (s).
        job: lease label shown to other jobs (default "robo cell <name>").
        status_fn: called with a line when the env waits for the operator.
        log: a `CellLog` the env appends every step to (latencies, executed actions).
        judge: who resets and judges episodes: "task" (a sim cell's Gymnasium task: placement, success) or
            "operator" (home, go, marks or `success_fn`: how a real cell works, also on a sim arm to try
            it). Default: "task" on a sim cell, "operator" on a real one.
    """

    metadata = {"render_modes": [], "render_fps": 10, "realtime": True}  # realtime: a step waits for the wall clock

    def __init__(
        self, cell: str | Path | Cell, task_id: str | None = None, *, arm: str | None = None,
        cameras: Sequence[str] | None = None, instance: int | str = 0, max_steps: int | None = None,
        success_fn: SuccessFn | None = None, operator: Operator | None = None, wait_go: bool | None = None,
        camera_tolerance_s: float = 0.03, job: str | None = None, status_fn: Callable[[str], None] | None = None,
        log: CellLog | None = None, judge: str | None = None,
    ) -> None:
        self._instance_key = str(resolve_cell_path(cell)) if not isinstance(cell, Cell) else cell.name
        instance = _instance(cell, instance)
        self.instance = instance
        self.cell = _load_cell(cell, instance)
        self.arm = _pick_arm(self.cell, arm)
        self.simulated = bool(getattr(self.arm, "simulated", False))
        if instance and not self.simulated:
            raise ValueError(f"cell {self.cell.name}: instance={instance} asked, but its arm '{self.arm.name}' is real "
                             "(one env per real cell: n_envs=1)")
        self.sim_task = None
        task = task_id
        judge = judge or ("task" if self.simulated else "operator")
        if judge not in ("task", "operator"):
            raise ValueError(f"judge={judge!r} must be 'task' or 'operator'")
        if judge == "task" and not self.simulated:
            raise ValueError(f"cell {self.cell.name}: arm '{self.arm.name}' is real: only the operator (or a "
                             "success_fn) can judge its episodes (judge='operator')")
        if judge == "task":
            if not task:
                raise ValueError(f"cell {self.cell.name} is simulated: name the task it runs (task_id=<Gymnasium id>)")
            from robo.cells.sim_task import SimTask

            self.sim_task = SimTask(task)
            self.arm.config = self.sim_task.configure(self.arm.config)
        all_cams = self.cell.by_kind("camera")
        names = list(all_cams) if cameras is None else list(cameras)
        unknown = [c for c in names if c not in all_cams]
        if unknown:
            raise ValueError(f"cell {self.cell.name} has no camera '{unknown[0]}' "
                             f"(cameras: {', '.join(all_cams) or 'none'})")
        self.cameras = {n: all_cams[n] for n in names}
        self.task_id = task or ""
        self.task_description = self.sim_task.description if self.sim_task else _describe(task)
        self.control_hz = float(self.sim_task.fps if self.sim_task else getattr(self.arm.config, "control_hz", 10.0))
        self.metadata = {**self.metadata, "render_fps": self.control_hz}
        self.max_steps = int(max_steps or (self.sim_task.max_steps if self.sim_task else DEFAULT_MAX_STEPS))
        self.success_fn = success_fn
        self.operator = operator or Operator()
        self.events = self.operator.listen()
        self.wait_go = (self.sim_task is None) if wait_go is None else bool(wait_go)
        self.camera_tolerance_s = float(camera_tolerance_s)
        self.job = job or f"robo cell {self.cell.name}"
        self.status_fn = status_fn
        self.log = log
        self._build_spaces()
        self._lease: Any = None
        self._group: CameraGroup | None = None
        self._started = False
        self._active = False
        self._t_obs = 0.0
        self.n_steps = 0
        self.n_episodes = 0
        self.n_late = 0
        self.n_holds = 0
        self.n_refused = 0
        self.n_dropped = 0
        self.final_controller: dict[str, Any] = {}
        self.last_info: dict[str, Any] = {}
        """The info of the last step (what a wrapper that keeps only part of it may still need)."""
        _OPEN_INSTANCES.setdefault(self._instance_key, set()).add(self.instance)

    @property
    def t_obs(self) -> float:
        """Host time (s) of the last observation returned."""
        return self._t_obs

    # ------------------------------------------------------------------ spaces and spec
    def _build_spaces(self) -> None:
        arm_spec = self.arm.spec()
        state = self.sim_task.spec[STATE] if self.sim_task else arm_spec[STATE]
        action = self.sim_task.spec[ACTION] if self.sim_task else arm_spec[ACTION]
        if action.low is None or action.high is None:
            raise ValueError(f"arm '{self.arm.name}' publishes no action bounds: a cell needs a bounded action")
        feats: dict[str, Feature] = {STATE: state}
        box = gym.spaces.Box(-STATE_BOUND, STATE_BOUND, state.shape, np.float32)
        spaces: dict[str, gym.spaces.Space] = {STATE: box}
        for name, cam in self.cameras.items():
            key = IMAGE_PREFIX + name
            feat = cam.spec()[key]
            feats[key] = feat
            spaces[key] = gym.spaces.Box(0, 255, feat.shape, np.uint8)
        feats[ACTION] = action
        self.robo_spec = Spec(feats)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(np.array(action.low, np.float32), np.array(action.high, np.float32),
                                           dtype=np.float32)

    # ------------------------------------------------------------------ life cycle
    def _start(self) -> None:
        """Lease the arm (exclusive) and the cameras (shared) for the whole run, then connect them."""
        names = [self.arm.name, *self.cameras]
        self._lease = self.cell.acquire(names, job=self.job)
        try:
            self.cell.connect(names)
            if self.sim_task is not None:
                self.sim_task.check_arm(self.arm)
            if self.cameras:
                self._group = CameraGroup(self.cameras, tolerance_s=self.camera_tolerance_s)
                for cam in self.cameras.values():
                    cam.wait_first_frame(timeout=10.0)
        except BaseException:
            self.cell.close()
            self._lease.release()
            self._lease = None
            raise
        self._started = True

    def close(self) -> None:
        """The controller holds (confirmed from its own state), devices close, the lease is released."""
        _OPEN_INSTANCES.get(self._instance_key, set()).discard(self.instance)
        self.events.close()
        if not self._started:
            if self.sim_task is not None:
                self.sim_task.close()
            return
        self._started = False
        self._active = False
        try:
            held = self.arm.hold()
            self.final_controller = {**self.arm.controller_status(), "hold_confirmed": bool(held)}
            if self.log is not None:
                self.log.controllers.append({"cell": self.cell.name, **self.final_controller})
        finally:
            try:
                self.cell.close()
            finally:
                if self._lease is not None:
                    self._lease.release()
                    self._lease = None
                if self.sim_task is not None:
                    self.sim_task.close()

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.events.poll()  # marks made before this reset do not count (a "go" during the move home does)
        if not self._started:
            self._start()
        self.arm.cancel_actions()  # whatever ran before stops here (the reset below re-targets the arm)
        if self.sim_task is not None:
            self.arm.reset(qpos=self.sim_task.initial_qpos(seed))  # the loop restarts, rearmed
        else:
            if not self.arm.move_home():
                raise RuntimeError(f"arm '{self.arm.name}' did not reach its home pose (controller: "
                                   f"{self.arm.controller_status()})")
            if self.wait_go:
                self._say("episode ready at home: press g to go (q stops)")
                if self.events.wait_for(("go",)) == "stop":
                    self._stop()
        self.events.poll()
        obs, self._t_obs, success = self._observe()
        self._active = True
        self.n_steps = 0
        self.n_episodes += 1
        return obs, {"success": success, "t_obs": self._t_obs}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if not self._active:
            raise RuntimeError("CellEnv.step() before reset() (or after the episode ended)")
        a = self._checked(action)
        info: dict[str, Any] = {"hold": False, "late": False}
        if self.arm.held:  # the watchdog tripped since the last step: this episode is over
            self.n_holds += 1
            self._active = False
            obs, self._t_obs, _ = self._observe()
            self.last_info = {**info, "success": False, "hold": True, "t_obs": self._t_obs}
            return obs, 0.0, False, True, self.last_info
        t_decide = now()
        n_late = self.arm.n_late_actions
        self.arm.exec_actions(a[None], [t_decide], late_s=1.0 / self.control_hz)
        wait = self._t_obs + 1.0 / self.control_hz - now()
        if wait > 0:
            time.sleep(wait)
        else:
            self.n_late += 1
            info["late"] = True
        t_obs_prev = self._t_obs
        obs, self._t_obs, success = self._observe()
        self.n_steps += 1
        executed = self._executed(t_decide, n_late)
        info["latency"] = {"obs_age_s": t_decide - t_obs_prev,
                           "cmd_age_s": (executed.t_sent - t_decide) if executed is not None else float("nan")}
        info["executed"] = None if executed is None else executed.sent
        if self.log is not None:
            self.log.add(env=self.instance, episode=self.n_episodes - 1, step=self.n_steps - 1, t_obs=t_obs_prev,
                         t_sent=executed.t_sent if executed is not None else float("nan"),
                         obs_age_s=info["latency"]["obs_age_s"], cmd_age_s=info["latency"]["cmd_age_s"],
                         late=bool(info["late"]), action=a,
                         dispatched=executed.action if executed is not None else np.full_like(a, np.nan),
                         sent=executed.sent if executed is not None else np.full_like(a, np.nan))
        truncated = executed is None  # the arm dropped the action (too late to send): the loop was starved
        if truncated:
            self.n_dropped += 1
            info["dropped"] = True
        for event in self.events.poll():
            if event == "success":
                success = True
            elif event == "failure":
                truncated = True
            elif event == "pause":
                self._pause()
                obs, self._t_obs, success = self._observe()
            elif event == "stop":
                self._stop()
        if self.sim_task is None and self.success_fn is not None:
            success = success or bool(self.success_fn(obs))
        truncated = truncated or (self.n_steps >= self.max_steps and not success)
        if success or truncated:
            self._active = False
        info.update(success=success, t_obs=self._t_obs)
        self.last_info = info
        return obs, float(success), bool(success), truncated, info

    # ------------------------------------------------------------------ internals
    def _checked(self, action: np.ndarray) -> np.ndarray:
        """The action as float32 (Da,), or UnsafeActionError (nothing is sent, the arm holds)."""
        a = np.asarray(action, dtype=np.float32)
        low, high = self.action_space.low, self.action_space.high
        why = ""
        if a.shape != low.shape:
            why = f"shape {a.shape}, expected {low.shape}"
        elif not np.all(np.isfinite(a)):
            why = f"non-finite values at dims {np.flatnonzero(~np.isfinite(a)).tolist()}"
        elif np.any(a < low - 1e-6) or np.any(a > high + 1e-6):
            bad = np.flatnonzero((a < low - 1e-6) | (a > high + 1e-6)).tolist()
            why = (f"outside the action bounds at dims {bad} "
                   f"({a[bad].tolist()} vs [{low[bad].tolist()}, {high[bad].tolist()}])")
        if why:
            self.n_refused += 1
            self.arm.cancel_actions()
            raise UnsafeActionError(f"cell {self.cell.name}: action not sent: {why}")
        return a

    def _observe(self) -> tuple[dict[str, np.ndarray], float, bool]:
        """(observation, its host time, the task's success or False)."""
        success = False
        if self.sim_task is not None:
            with self.arm.sim_lock:
                t = now()
                state, success = self.sim_task.observe(self.arm.world())
            obs: dict[str, np.ndarray] = {STATE: state}
        else:
            arm_obs, t = self.arm.get_obs()
            obs = {STATE: np.asarray(arm_obs[STATE], np.float32)}
        if self._group is not None:
            obs.update(self._images())
        return obs, t, success

    def _images(self) -> dict[str, np.ndarray]:
        """The cameras' newest frames aligned by capture time (waits only when they are not aligned)."""
        assert self._group is not None
        try:
            frames = align_frames({n: c.history() for n, c in self.cameras.items()},
                                  tolerance_s=self.camera_tolerance_s)
        except AlignmentError:
            frames = self._group.read(timeout=1.0)
        for n, f in frames.items():
            self.cameras[n].mark_read(f)
        return {k: v for k, v in CameraGroup.observation(frames).items() if k in self.robo_spec}

    def _executed(self, t_due: float, n_late: int) -> Any:
        """The arm's record of the action scheduled at `t_due`, or None once the arm has dropped it as
        late (`n_late_actions` grew past `n_late`) or after 1 s."""
        deadline = time.monotonic() + 1.0
        while True:
            for e in reversed(self.arm.executed):
                if e.t_due == t_due:
                    return e
                if e.t_due < t_due:
                    break
            if self.arm.n_late_actions > n_late or time.monotonic() > deadline:
                return None
            time.sleep(0.0005)

    def hold(self) -> bool:
        """The controller holds where the arm is (an operator's pause); True once the controller says so.
        Call `resume()` before the next `step()` (a step into a hold ends the episode)."""
        self.arm.cancel_actions()
        return bool(self.arm.hold())

    def resume(self) -> dict[str, np.ndarray]:
        """Leave a hold: rearm with the target where the arm is (no jump); the fresh observation."""
        self.arm.rearm()
        obs, self._t_obs, _ = self._observe()
        return obs

    def observe(self) -> dict[str, np.ndarray]:
        """The observation now (e.g. while held), without acting."""
        return self._observe()[0]

    def _pause(self) -> None:
        self.hold()
        self._say("paused: the controller holds (p or r resumes, q stops)")
        if self.events.wait_for(("pause", "resume")) == "stop":
            self._stop()
        self.arm.rearm()

    def _stop(self) -> None:
        self.arm.hold()
        self._active = False
        raise OperatorStop("the operator stopped the run")

    def _say(self, text: str) -> None:
        if self.status_fn is not None:
            self.status_fn(text)


_OPEN_INSTANCES: dict[str, set[int]] = {}  # sim cell path -> copies this process has open


def _instance(cell: str | Path | Cell, instance: int | str) -> int:
    """The copy number to open: `instance` as given, or for "auto" the lowest one this process has not."""
    key = str(resolve_cell_path(cell)) if not isinstance(cell, Cell) else cell.name
    taken = _OPEN_INSTANCES.setdefault(key, set())
    if instance == "auto":
        instance = next(i for i in range(len(taken) + 1) if i not in taken)
    return int(instance)


def _load_cell(cell: str | Path | Cell, instance: int) -> Cell:
    if isinstance(cell, Cell):
        if instance:
            raise ValueError("instance > 0 needs the cell's YAML, not a loaded Cell")
        return cell
    path = resolve_cell_path(cell)
    data = read_yaml(path)
    if instance:
        data = {**data, "name": f"{data.get('name') or path.stem}-{int(instance)}"}
    return Cell.from_dict(data, source=str(path), default_name=path.stem, path=path)


def _pick_arm(cell: Cell, name: str | None) -> Arm:
    arms = cell.by_kind("arm")
    if name is not None:
        res = cell[name]
        if not isinstance(res, Arm):
            raise ValueError(f"cell {cell.name}: resource '{name}' is a {res.kind}, not an arm")
        return res
    # a leader arm (another arm wired as some teleop device's leader) is not what a policy drives
    leaders = {p.name for r in cell.resources.values() for role, p in r.peers.items() if role == "leader"}
    followers = [a for n, a in arms.items() if n not in leaders]
    if len(followers) != 1:
        raise ValueError(f"cell {cell.name} has {len(followers)} arms ({', '.join(arms) or 'none'}): "
                         "name one with arm=")
    return followers[0]  # type: ignore[return-value]


def _describe(task: str | None) -> str:
    """A real cell's task description: a Gymnasium task's own, or the text given."""
    if not task:
        return "manipulation"
    try:
        from robo.learn.residual_env import make_env

        env = make_env(task)
    except Exception:  # noqa: BLE001 - not a Gymnasium id: the text is the description
        return task
    try:
        return str(getattr(env.unwrapped, "task_description", task))
    finally:
        env.close()


def cell_env_fn(cell: str | Path, task_id: str | None, **kwargs: Any) -> Callable[[int], CellEnv]:
    """An env factory for `ResidualVecEnv(env_fn=...)`: env i is instance i of the cell (sim cells
    run N copies; a real cell refuses i > 0)."""
    def make(i: int) -> CellEnv:
        return CellEnv(cell, task_id, instance=i, **kwargs)

    return make
