"""The one RL loop every algorithm and every placement runs (robo.learn.algo has the contract).

Three parts, each written once:

- `prepare(algo, cfg, run_dir)` -> `Setup`: the run preamble (run folder, seed, threads, device,
  saved config and run record, the frozen base and its demos, the task seen through the base).
- `Collector`: the actor side. N envs seen through the frozen base (`ResidualVecEnv`) and the
  algorithm's explorer; `step()` acts, steps the envs and returns the rows the step completed.
- `LearnerCore`: the learner side. Validates rows against the algorithm's row schema, stores them
  durably (`robo.data.segments`, the one resume format), hands them to the algorithm, runs the
  updates its schedule owes, evaluates on fixed seeds every `eval_every` rows, checkpoints, logs,
  and writes the final report.

`train()` joins them in one process (`robo train --residual`). `robo.runtime.learner` puts a
`LearnerCore` behind sockets and `robo.runtime.actor` a `Collector`, so `robo learner` + `robo actor`
and `--actors N` run exactly this code with a network in between.
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robo.config import save_config
from robo.data.atomic import atomic_path, atomic_write_json
from robo.data.segments import SegmentStore
from robo.learn.algo import FEATURE_STATS, Algorithm, EnvInfo, RLConfig, write_run_record
from robo.learn.common import Logger, ProgressLine, StopSignal, configure_threads, load_torch, pick_device, set_seed
from robo.learn.evaluate import EvalResult, evaluate
from robo.learn.residual_env import ResidualVecEnv

__all__ = ["Collector", "LearnerCore", "Setup", "feature_stats", "prepare", "resolve_base_for", "train"]

CHECKPOINT = "checkpoint"


# ==================================================================================== set-up
@dataclass
class Setup:
    """Everything the learner side is built from (made once per run by `prepare`)."""

    algo: Algorithm
    cfg: Any
    run_dir: Path
    device: torch.device
    base: Any | None
    """The frozen base policy (None: no base, the base action is 0)."""
    dataset: Any | None
    """Demos for the demo buffer (robo.data.Dataset) or None."""
    base_checkpoint: Path | None
    view: ResidualVecEnv
    """One env of the task seen through the base: dims, action scaler, state normaliser, base mask."""
    env_info: EnvInfo
    evaluates: bool = True
    """False: no fixed-seed evaluation (the envs are a real cell: the curve is the actors' episodes)."""


def resolve_base_for(cfg: RLConfig) -> tuple[Any | None, Any | None, Path | None]:
    """(base policy, demo dataset, base checkpoint) of a config; `base: none` gives no base (demos
    only when `demos` names a dataset)."""
    from robo.learn.pipeline import resolve_base

    if cfg.uses_base:
        base, dataset, ckpt, _ = resolve_base(cfg.task, cfg.base, cfg.demos, cfg.default_base)
        return base, dataset, ckpt
    if cfg.demos:
        from robo.data import Dataset

        return None, Dataset(cfg.demos), None
    return None, None, None


def feature_stats(base: Any | None, dataset: Any | None) -> dict | None:
    """The stats observation features are normalised with: the base's, else the demos' (no base)."""
    return None if base is not None else getattr(dataset, "stats", None)


def env_info_of(view: ResidualVecEnv, cfg: Any, base: Any | None = None) -> EnvInfo:
    """The dims and the residual mask: dims the base's demos used (unless `mask_unused_dims` is off),
    minus `frozen_action_dims`; the base policy and the task's action scaler."""
    mask = view.residual_mask.copy() if getattr(cfg, "mask_unused_dims", True) else np.ones(view.act_dim, np.float32)
    for d in getattr(cfg, "frozen_action_dims", []):
        if not 0 <= d < view.act_dim:
            raise ValueError(f"frozen_action_dims: {d} is not an action dim (0..{view.act_dim - 1})")
        mask[d] = 0.0
    return EnvInfo(obs_dim=view.obs_dim, act_dim=view.act_dim, residual_mask=mask.astype(np.float32), base=base,
                   scaler=view.scaler)


def configure_torch(cfg: RLConfig, seed: int) -> torch.device:
    configure_threads(cfg.torch_threads)
    set_seed(seed)
    return pick_device(cfg.device)


def prepare(algo: Algorithm, cfg: RLConfig, run_dir: str | Path, *, resume: bool = False,
            env_fn: Any = None, evaluates: bool = True, **record: Any) -> Setup:
    """The run preamble. A new run refuses a folder that holds one; a resumed run needs its
    checkpoint. Nothing is written until the base, the demos and the task are known to work, so a
    run that fails at start leaves no folder behind. `env_fn(i)` builds the envs when they are not
    the Gymnasium id `cfg.task` (a real cell; the view is built, never reset); `evaluates=False`
    skips the fixed-seed evaluations (nothing to evaluate on but the robot itself)."""
    run_dir = Path(run_dir)
    if resume and not (run_dir / "replay").is_dir():
        raise FileNotFoundError(f"cannot resume: {run_dir / 'replay'} not found (no run in {run_dir})")
    if not resume and (run_dir / "replay").exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it with --resume or choose another folder")
    device = configure_torch(cfg, cfg.seed)
    base, dataset, ckpt = resolve_base_for(cfg)
    set_seed(cfg.seed)  # again: a base made just now (demos + BC) drew from the generators, a cached one did not
    view = ResidualVecEnv(cfg.task, base, 1, cfg.seed, n_action_steps=cfg.n_action_steps or None,
                          stats=feature_stats(base, dataset), env_fn=env_fn)
    info = env_info_of(view, cfg, base)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        atomic_write_json(run_dir / FEATURE_STATS, view.normalizer_stats)
        write_run_record(run_dir, algo, cfg, base_checkpoint=str(ckpt) if ckpt else None, **record)
    except BaseException:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return Setup(algo, cfg, run_dir, device, base, dataset, ckpt, view, info, evaluates)


# ==================================================================================== actor side
@dataclass
class Collected:
    """What one `Collector.step()` produced."""

    rows: dict[str, np.ndarray] | None
    successes: list[bool]
    lengths: list[int]
    dropped: int
    env_steps: int

    def meta(self) -> dict[str, Any]:
        return {"n_episodes": len(self.successes), "n_success": int(sum(self.successes)),
                "length_sum": int(sum(self.lengths)), "dropped": self.dropped, "env_steps": self.env_steps}


class Collector:
    """The actor side: N envs seen through the frozen base, acting with the algorithm's explorer (an
    algorithm that acts with the policy itself, `runs_base` False, gets envs that do not run the base)."""

    def __init__(self, algo: Algorithm, cfg: Any, base: Any | None, *, seed: int, n_envs: int | None = None,
                 stats: dict | None = None, env_kwargs: dict[str, Any] | None = None, env_fn: Any = None,
                 executor_mode: str = "sync", intervention_fn: Any = None) -> None:
        """`env_fn(i)` builds env i instead of `cfg.task` (a cell: robo.cells.cell_env_fn); `executor_mode`
        "async" runs the base as on a robot (one env); `intervention_fn(env)` gives env's
        `robo.hil.Intervention` gate: an operator may take over (`robo train --residual --teleop`)."""
        self.n_envs = int(n_envs or cfg.n_envs)
        if stats is None and not algo.runs_base:
            stats = getattr(base, "stats", None)  # the features stay the base's without the base in the envs
        self.envs = ResidualVecEnv(cfg.task, base if algo.runs_base else None, self.n_envs, seed, stats=stats,
                                   n_action_steps=cfg.n_action_steps or None, env_kwargs=env_kwargs,
                                   env_fn=env_fn, executor_mode=executor_mode)
        self.env_info = env_info_of(self.envs, cfg, base)
        self.explorer = algo.explorer(cfg, self.env_info, seed)
        self.gates = [intervention_fn(env) for env in self.envs.envs] if intervention_fn is not None else None
        self.obs, self.base = self.envs.reset()
        for gate in self.gates or ():
            gate.new_episode()
        self.env_steps = 0
        self.human_steps = 0

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.explorer.load_weights(weights)

    def step(self) -> Collected:
        """Act in every env once; the rows this step completed and the episodes it ended."""
        if self.explorer.raw_obs:
            action, extras = self.explorer.act(self.obs, self.base, raw=self.envs.raw)
        else:
            action, extras = self.explorer.act(self.obs, self.base)
        if self.gates is not None:
            action, extras = self._intervene(action, extras)
        res = self.envs.step(action)
        rows = self.explorer.observe(self.obs, self.base, action, extras, res)
        self.obs, self.base = res.obs, res.base
        for i in np.flatnonzero(res.terminated | res.truncated) if self.gates is not None else ():
            self.gates[i].new_episode()
        self.env_steps += self.n_envs
        return Collected(rows, list(res.episode_successes), list(res.episode_lengths), int((~res.valid).sum()),
                         self.n_envs)

    def _intervene(self, action: np.ndarray, extras: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """Each env's gate decides: the explorer's action, or the operator's (marked human in the rows).
        Interventions into RL follow hg-dagger: control returns to the policy, the task ends episodes."""
        action = action.copy()
        human = np.zeros(self.n_envs, bool)
        for i, gate in enumerate(self.gates or ()):
            while True:
                d = gate.decide(self.envs.envs[i], self.envs.raw[i], action[i], "residual", self.envs.scaler)
                if d.replan:  # control came back to the policy: re-plan the base, act again
                    self.obs[i], self.base[i] = self.envs.replan(i, d.obs)
                    action[i] = self.explorer.act(self.obs, self.base)[0][i]
                    continue
                if d.ended:  # a mark or quit: RL episodes end by the task; a quit stops the run
                    if d.quit:
                        raise KeyboardInterrupt("the operator quit")
                    gate.phases.reset()
                    continue
                break
            action[i], human[i] = d.action, d.human
        self.human_steps += int(human.sum())
        return action, {**extras, "human": human}

    def close(self) -> None:
        for gate in self.gates or ():
            gate.operator.close()
        self.envs.close()


# ==================================================================================== learner side
class RowError(ValueError):
    """A batch of rows does not match the algorithm's row schema (the message names the key)."""


def concat_rows(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class LearnerCore:
    """The learner side of the loop; placement-free (see the module docstring).

    Counters (`self.state`, checkpointed): `n_rows` stored rows, `env_steps` actors' env steps,
    `episodes`, `dropped_steps`, `skipped_rows` (stored rows the schema refused on resume), `evals` (the
    fixed-seed learning curve, [{"env_steps", "success_rate"}], env_steps counted in stored rows).
    """

    def __init__(self, setup: Setup, *, resume: bool = False, progress_name: str | None = None) -> None:
        self.setup = setup
        self.cfg = setup.cfg
        self.run_dir = setup.run_dir
        self.learner = setup.algo.learner(setup)
        self.schema = {**self.learner.row_schema, "policy_version": ((), np.dtype(np.int64))}
        self.store = SegmentStore(self.run_dir / "replay")
        self.state: dict[str, Any] = {"n_rows": 0, "env_steps": 0, "episodes": 0, "dropped_steps": 0,
                                      "evals": [], "wall_clock_s": 0.0}
        self._recent: deque[bool] = deque(maxlen=100)
        self._pending: list[tuple[dict[str, np.ndarray], dict[str, Any]]] = []
        self.metrics: dict[str, float] = {}
        if resume:
            self._resume()
        self.logger = Logger(self.run_dir)
        self.progress = ProgressLine(self.cfg.total_env_steps, progress_name or f"{setup.algo.name}",
                                     start=self.budget_steps)
        self._t0, self._rows0, self._updates0 = time.monotonic(), self.budget_steps, self.learner.n_updates
        every = self.cfg.eval_every
        self._next_eval = (self.budget_steps // every + 1) * every
        self._next_ckpt = (self.budget_steps // self.cfg.checkpoint_every + 1) * self.cfg.checkpoint_every
        self._next_log = 0
        self._last_log = (self.budget_steps, self.learner.n_updates, self._t0)  # the rates between logs

    # ------------------------------------------------------------------------------- rows
    def validate(self, rows: dict[str, Any]) -> dict[str, np.ndarray]:
        """Rows as the schema says (keys, dtypes, shapes, finite values), or `RowError` naming the key."""
        if not isinstance(rows, dict) or not rows:
            raise RowError("rows: expected a non-empty mapping of arrays")
        missing, extra = self.schema.keys() - rows.keys(), rows.keys() - self.schema.keys()
        if missing or extra:
            what = ([f"missing keys {sorted(missing)}"] if missing else []) + (
                [f"unknown keys {sorted(extra)}"] if extra else [])
            raise RowError(f"rows: {', '.join(what)} (expected {sorted(self.schema)})")
        out, n = {}, None
        for key, (shape, dtype) in self.schema.items():
            value = np.asarray(rows[key])
            if value.ndim != 1 + len(shape) or tuple(value.shape[1:]) != tuple(shape):
                want = "(n, " + ", ".join(map(str, shape)) + ")" if shape else "(n,)"
                raise RowError(f"rows: '{key}' has shape {value.shape}, expected {want}")
            if n is None:
                n = len(value)
            elif len(value) != n:
                raise RowError(f"rows: '{key}' has {len(value)} rows, '{next(iter(self.schema))}' has {n}")
            if value.dtype.kind not in "biuf" or (dtype.kind in "iu" and value.dtype.kind == "f"):
                raise RowError(f"rows: '{key}' has dtype {value.dtype}, expected {dtype}")
            value = value.astype(dtype, copy=False)
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise RowError(f"rows: '{key}' contains NaN or inf")
            out[key] = value
        if not n:
            raise RowError("rows: zero rows")
        return out

    def add(self, rows: dict[str, Any], meta: dict[str, Any] | None = None, *, deferred: bool = False) -> int:
        """Validate, store, then learn from a batch of rows; returns its row count.

        `deferred=True` (the embedded loop) learns at once and stores the rows with the next
        `flush()`; otherwise the rows are appended to the store before the algorithm sees them
        (fsync with `sync()`, before acknowledging them)."""
        meta = dict(meta or {})
        if "policy_version" not in rows:
            n = len(next(iter(rows.values())))
            rows = {**rows, "policy_version": np.full(n, int(meta.get("policy_version", self.version)), np.int64)}
        rows = self.validate(rows)
        if deferred:
            self._pending.append((rows, meta))
        else:
            self.store.append(rows, meta, sync=False)
        self._learn(rows, meta)
        return len(rows["policy_version"])

    def count(self, meta: dict[str, Any]) -> None:
        """Episode results and env steps of actors' steps that produced no rows (e.g. a rollout in progress)."""
        if "actor" in meta and int(meta["actor"]) not in self.state.setdefault("actors", []):
            self.state["actors"].append(int(meta["actor"]))
        self.state["env_steps"] += int(meta.get("env_steps", 0))
        self.state["episodes"] += int(meta.get("n_episodes", 0))
        self.state["dropped_steps"] += int(meta.get("dropped", 0))
        k, n = int(meta.get("n_success", 0)), int(meta.get("n_episodes", 0))
        self._recent.extend([True] * k + [False] * (n - k))

    def _learn(self, rows: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.learner.add({k: v for k, v in rows.items() if k != "policy_version"})
        self.state["n_rows"] += len(rows["policy_version"])
        if "human" in rows:
            self.state["human_rows"] = self.state.get("human_rows", 0) + int((rows["human"] > 0.5).sum())
        self.count(meta)

    def flush(self, sync: bool = False) -> None:
        """Store the rows `add(..., deferred=True)` kept back, as one record."""
        if self._pending:
            rows = concat_rows([r for r, _ in self._pending])
            meta = {"n_batches": len(self._pending)}
            for _, m in self._pending:
                for k, v in m.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "policy_version":
                        meta[k] = meta.get(k, 0) + v
            self.store.append(rows, meta, sync=False)
            self._pending = []
        if sync:
            self.store.sync()

    def sync(self) -> None:
        self.store.sync()

    def describe(self) -> dict[str, Any]:
        """{"algo": name, "config": the resolved config as a plain dict}: what actors act with."""
        from robo.config import to_dict

        return {"algo": self.setup.algo.name, "config": to_dict(self.cfg)}

    def seen(self, uid: str) -> bool:
        """True if a batch with this uid is stored already (a resent batch whose ack was lost)."""
        return self.store.has_uid(uid)

    def _resume(self) -> None:
        path = self.run_dir / CHECKPOINT / "state.pt"
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume: {path} not found (the run never checkpointed)")
        t0 = time.monotonic()
        skipped = 0
        for rows, meta in self.store:
            try:
                rows = self.validate(rows)
            except RowError as e:
                skipped += len(next(iter(rows.values()), []))
                print(f"resume: skipped a stored batch ({e})", flush=True)
                continue
            self._learn(rows, meta)
        state = load_torch(path)
        self.learner.load_state_dict(state["learner"])
        torch.set_rng_state(state["torch_rng"])
        replayed = self.state["n_rows"]
        self.state.update({k: v for k, v in state["counters"].items() if k != "n_rows"})
        self.state["n_rows"] = replayed
        self.state["skipped_rows"] = skipped  # stored rows the schema refuses (written by older code)
        self.state["resumes"] = int(self.state.get("resumes", 0)) + 1
        print(f"resumed {self.run_dir}: {replayed} stored rows, {self.learner.n_updates} updates "
              f"(checkpoint at {state['counters']['n_rows']} rows), {time.monotonic() - t0:.1f} s", flush=True)

    # ------------------------------------------------------------------------------- schedule
    @property
    def n_rows(self) -> int:
        return int(self.state["n_rows"])

    @property
    def budget_steps(self) -> int:
        """Env steps the stored rows stand for (= rows, unless the learner's row is a whole chunk): what
        `total_env_steps`, `eval_every` and `checkpoint_every` count."""
        return self.n_rows * int(getattr(self.learner, "env_steps_per_row", 1))

    @property
    def version(self) -> int:
        """The weights' version: updates done."""
        return int(self.learner.n_updates)

    def updates_owed(self) -> int:
        return self.learner.updates_owed()

    def update(self) -> dict[str, float]:
        self.metrics.update(self.learner.update())
        return self.metrics

    def update_owed(self) -> int:
        """Every update the schedule owes for the rows added so far; returns how many were made."""
        n = 0
        while self.updates_owed() > 0:
            self.update()
            n += 1
        return n

    def hold(self) -> bool:
        """True while actors should wait: the learner is more than `max_actor_lead` rows behind, or an
        evaluation or checkpoint is due (collection pauses for it, as in the one-process loop)."""
        due = min(self._next_eval, self._next_ckpt) if self.setup.evaluates else self._next_ckpt
        if not self.data_done() and self.budget_steps >= due:
            return True
        return self.updates_owed() > 0 and self.learner.rows_ahead() > self.cfg.max_actor_lead

    def data_done(self) -> bool:
        return self.budget_steps >= self.cfg.total_env_steps

    def done(self) -> bool:
        return self.data_done() and self.updates_owed() == 0

    def weights(self) -> dict[str, np.ndarray]:
        return self.learner.weights()

    # ------------------------------------------------------------------------------- cadence
    def evaluate(self, n_episodes: int | None = None) -> EvalResult:
        """Fixed-seed evaluation of the learner's current policy (seeds `eval_seed`, +1, ...)."""
        policy, residual = self.learner.eval_policy()
        view = self.setup.view
        return evaluate(self.cfg.task, policy if policy is not None else self.setup.base,
                        n_episodes or self.cfg.eval_episodes, seed=self.cfg.eval_seed, residual=residual,
                        stats=view.normalizer_stats, n_action_steps=self.cfg.n_action_steps or None)

    def periodic(self, extra: dict[str, Any] | None = None) -> None:
        """The learning curve's first point, then evaluations, checkpoints, logs and progress, each on
        its own cadence of stored rows (counted in env steps, `budget_steps`)."""
        n = self.budget_steps
        if self.setup.evaluates and not self.state["evals"]:
            self._record_eval(0, self.evaluate(), "step 0")
        if self.setup.evaluates and n >= self._next_eval:
            self._next_eval = (n // self.cfg.eval_every + 1) * self.cfg.eval_every
            self._record_eval(n, self.evaluate(), f"{n} env steps")
        if n >= self._next_ckpt:
            self._next_ckpt = (n // self.cfg.checkpoint_every + 1) * self.cfg.checkpoint_every
            self.checkpoint()
        elapsed = max(1e-6, time.monotonic() - self._t0)
        if n >= self._next_log:
            self._next_log = n + 500
            now = time.monotonic()
            last_n, last_updates, last_t = self._last_log
            dt = max(1e-6, now - last_t)
            self._last_log = (n, self.version, now)
            self.logger.log(n, {**self.metrics, "charts/train_success": self.train_success,
                                "charts/steps_per_s": (n - last_n) / dt,
                                "charts/updates_per_s": (self.version - last_updates) / dt,
                                "charts/episodes": self.state["episodes"], "charts/updates": self.version,
                                "charts/dropped_steps": self.state["dropped_steps"],
                                "charts/human_rows": self.state.get("human_rows", 0)})
        fields = {"episodes": self.state["episodes"], "train_success": self.train_success,
                  "eval_success": self.state["evals"][-1]["success_rate"] if self.state["evals"] else float("nan"),
                  "steps/s": (n - self._rows0) / elapsed,
                  "updates/s": (self.version - self._updates0) / elapsed, **(extra or {})}
        if self.state["dropped_steps"]:
            fields["dropped"] = self.state["dropped_steps"]
        if self.state.get("human_rows"):
            fields["human"] = self.state["human_rows"]
        self.progress.update(n, fields)

    @property
    def train_success(self) -> float:
        """Success of the actors' last 100 episodes (with exploration noise)."""
        return float(np.mean(self._recent)) if self._recent else 0.0

    def _record_eval(self, n: int, result: EvalResult, label: str) -> None:
        self.state["evals"].append({"env_steps": n, "success_rate": result.success_rate,
                                    "n_episodes": result.n_episodes, "human_rows": self.state.get("human_rows", 0)})
        self.logger.log(n, {"eval/success_rate": result.success_rate, "eval/mean_length": result.mean_length})
        if n == 0:
            print(result.summary(f"{self.setup.algo.name} policy at {label}"), flush=True)
        self.progress.update(n, {"eval_success": result.success_rate}, force=True)

    def checkpoint(self) -> None:
        """Rows fsynced, then learner state + counters + RNG -> checkpoint/state.pt (atomic)."""
        self.flush(sync=True)
        state = {"learner": self.learner.state_dict(), "counters": dict(self.state),
                 "torch_rng": torch.get_rng_state()}
        state["counters"]["wall_clock_s"] = self.state["wall_clock_s"] + time.monotonic() - self._t0
        with atomic_path(self.run_dir / CHECKPOINT / "state.pt") as tmp:
            torch.save(state, tmp)

    def finish(self, *, report: bool = True, **extra: Any) -> dict[str, Any]:
        """Final checkpoint, the policy artefact, and (with `report`) the final base vs fine-tuned
        evaluation: results.md, report.json, plots, video. Returns the counters."""
        self.progress.close()
        self.state["wall_clock_s"] += time.monotonic() - self._t0
        self._t0 = time.monotonic()
        self.state["updates"] = self.version
        self.checkpoint()
        self.learner.save_policy(self.run_dir)
        self.logger.close()
        if report and self.setup.evaluates:
            from robo.learn.pipeline import finish_report

            cfg = self.cfg
            policy, residual = self.learner.eval_policy()
            finish_report(self.run_dir, cfg.task, self.setup.base, residual, self.state["evals"],
                          cfg.final_eval_episodes, cfg.eval_seed, stats=self.setup.view.normalizer_stats,
                          n_action_steps=cfg.n_action_steps or None, n_videos=cfg.final_videos, tuned=policy,
                          extra={"algo": self.setup.algo.name, "env_steps": self.budget_steps,
                                 **({"actors": len(self.state["actors"])} if self.state.get("actors") else {}),
                                 "episodes": self.state["episodes"], "updates": self.version,
                                 **({"human_rows": self.state["human_rows"]} if self.state.get("human_rows") else {}),
                                 "wall_clock_s": self.state["wall_clock_s"],
                                 "base_checkpoint": str(self.setup.base_checkpoint), **self.learner.report(),
                                 **extra})
        return dict(self.state)

    def close(self) -> None:
        self.store.close()


# ==================================================================================== one process
def train(algo: Algorithm, cfg: RLConfig, run_dir: str | Path, *, resume: bool = False,
          report: bool = True, env_fn: Any = None, view_env_fn: Any = None,
          intervention_fn: Any = None) -> dict[str, Any]:
    """`robo train --residual`: the collector and the learner core in one process. Returns the counters
    (also in `run_dir/report.json` with `report`). `env_fn(i)` builds the collector's envs instead of
    `cfg.task` (`robo train --residual --cell`); `view_env_fn` the learner's view too (a real cell
    without a simulated twin: no fixed-seed evaluations then); `intervention_fn(env)` an operator's gate
    per env (`--teleop`: robo.hil; the human rows go to both halves of the batch)."""
    setup = prepare(algo, cfg, run_dir, resume=resume, placement="embedded", env_fn=view_env_fn,
                    evaluates=view_env_fn is None)
    core = LearnerCore(setup, resume=resume)
    collector = Collector(algo, cfg, setup.base, seed=cfg.seed + 1000 * core.state.get("resumes", 0),
                          stats=setup.view.normalizer_stats, env_fn=env_fn, intervention_fn=intervention_fn)
    stop = StopSignal()
    # Off-policy updates run on a second core while the envs step: the explorer acts with weights one
    # env step older than in a serial loop (`overlap_updates`; on-policy rows need the weights that made them).
    overlap = cfg.overlap_updates and not collector.explorer.on_policy
    pool = ThreadPoolExecutor(1, thread_name_prefix="robo-updates") if overlap else None
    try:
        collector.load_weights(core.weights())
        version = core.version
        core.periodic()
        while not core.data_done():
            if stop.set:  # Ctrl-C / SIGTERM: keep what was learnt, resumable, then stop
                core.checkpoint()
                core.progress.close()
                print(f"interrupted at {core.n_rows} rows; continue with: robo train --residual --resume {run_dir}",
                      flush=True)
                raise KeyboardInterrupt
            updating = pool.submit(core.update_owed) if pool is not None else None
            try:
                got = collector.step()
            finally:
                if updating is not None:
                    updating.result()  # the learner is never left running past this step
            if got.rows is not None:
                core.add(got.rows, got.meta(), deferred=True)
            else:
                core.count(got.meta())
            if got.successes or len(core._pending) >= 64:
                core.flush()
            if pool is None:
                core.update_owed()
            if core.version != version:
                collector.load_weights(core.weights())
                version = core.version
            core.periodic()
        core.update_owed()  # the last step's rows
        stop.restore()
        return core.finish(report=report)
    finally:
        stop.restore()
        if pool is not None:
            pool.shutdown(wait=True)
        collector.close()
        core.close()
        setup.view.close()
