"""The RL algorithm contract: what every algorithm file provides, and the registry that names them.

An algorithm is one file in `robo/learn/` (CleanRL-style: config, networks, updates) that exposes an
`ALGORITHM = Algorithm(...)` record. It has two sides, which `robo.learn.spine` drives the same way in
every placement (one process, a learner process + actor processes, a cluster):

    explorer = algo.explorer(cfg, env_info, seed)        # actor side, one per actor (N envs)
    explorer.load_weights(weights)                       # {name: np.ndarray} from the learner
    action, extras = explorer.act(obs, base)             # (N, Do), (N, Da) -> (N, Da) in [-1, 1]
    action, extras = explorer.act(obs, base, raw=raw)    # `raw_obs` explorers: + the task's raw obs dicts
    rows = explorer.observe(obs, base, action, extras, step)   # a VecStep -> stored rows or None

    learner = algo.learner(setup)                        # learner side, one per run
    learner.row_schema                                   # {key: (shape, dtype)} of one stored row
    learner.add(rows)                                    # {key: (n, ...)} validated rows
    learner.updates_owed() -> int                        # the update-to-data schedule
    learner.update() -> metrics                          # one update
    learner.weights() -> {name: np.ndarray}              # what explorers need to act
    learner.eval_policy() -> (policy | None, residual_fn | None)   # for fixed-seed evaluation
    learner.save_policy(run_dir); algo.load_policy(run_dir)        # the run's artefact and its reader
    learner.state_dict() / load_state_dict(sd)           # everything to resume, except the rows
    learner.env_steps_per_row; learner.report()          # budget unit (1; a chunk: Ta); report extras

Two kinds of algorithm: a residual on the frozen base (TD3, PPO: `Algorithm.residual`), or one that
acts alone. One that fine-tunes the chunk policy itself (ReinFlow, RL-100) acts on the raw observations
(`Explorer.raw_obs`), its envs do not run the base (`Algorithm.runs_base` False), it stores one row per
executed chunk (`env_steps_per_row` = Ta) and its artefact is an ordinary policy checkpoint.

Rows are the unit of data everywhere: the learner stores them (robo.data.segments) before it adds
them, resumes by replaying them, and counts its budget (`total_env_steps`) in them. Shared config
fields live in `RLConfig`; each algorithm's config subclasses it.

The registry maps `--algo` names to modules; any other name is a module path (a user's algorithm)
whose module defines `ALGORITHM`. A run folder records its algorithm in `run.json`, so every reader
(`robo eval --residual`, `--resume`, `robo serve`) picks the right loader with `load_run`.
"""

from __future__ import annotations

import importlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from robo.config import check_range
from robo.learn.evaluate import ResidualFn
from robo.learn.pipeline import DefaultBaseConfig

if TYPE_CHECKING:
    from robo.learn.residual_env import VecStep
    from robo.learn.spine import Setup

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "EnvInfo",
    "Explorer",
    "Learner",
    "LoadedRun",
    "RLConfig",
    "ResidualFn",
    "RowSchema",
    "UpdateSchedule",
    "float_schema",
    "get_algorithm",
    "load_module_weights",
    "load_run",
    "module_weights",
    "read_run_record",
    "write_run_record",
]

RowSchema = dict[str, tuple[tuple[int, ...], np.dtype]]

ALGORITHMS: dict[str, str] = {
    "td3": "robo.learn.residual_td3",
    "ppo": "robo.learn.residual_ppo",
    "sac": "robo.learn.sac",
    "reinflow": "robo.learn.reinflow",
    "rl100": "robo.learn.rl100",
}
"""`--algo` names of robo's algorithms and their modules (`robo train` and `robo learner` alike)."""


# ==================================================================================== shared config
@dataclass
class RLConfig:
    """Fields every RL algorithm shares (run set-up, budget, evaluation, placement); each algorithm's
    config subclasses this and adds its own hyper-parameters."""

    task: str = "PandaPegInsert-v0"
    """Gymnasium task id (robo tasks or any env exposing the same obs/action spec)."""
    base: str = ""
    """BC checkpoint folder of the frozen base; empty = the embedded default (demos + BC, cached);
    `none` = no base (the base action is 0: RL from scratch)."""
    demos: str = ""
    """Dataset folder for the demo buffer; empty = the dataset recorded in the base checkpoint."""
    seed: int = 0
    """Seed for networks, exploration and training episodes."""
    total_env_steps: int = 300_000
    """Stored transitions (env steps of all envs and actors together) to train for."""
    n_envs: int = 1
    """Environments each actor steps in lockstep (the base's chunks predicted in one batch)."""
    n_action_steps: int = 0
    """Open-loop execution horizon of the base chunks; 0 = the base's own `n_action_steps`."""
    mask_unused_dims: bool = True
    """Residual only on action dims the base's demos used (a never-commanded dim, e.g. tilt, drifts)."""
    frozen_action_dims: list[int] = field(default_factory=list)
    """Action dims the residual never changes, e.g. [3, 4] (roll, pitch of the Panda tasks)."""
    eval_every: int = 10_000
    """Stored transitions between evaluations (fixed seeds, deterministic policy)."""
    eval_episodes: int = 50
    """Episodes per periodic evaluation."""
    final_eval_episodes: int = 100
    """Episodes of the final base vs base + fine-tuned comparison."""
    final_videos: int = 4
    """Seeds of the final evaluation rendered side by side, base | fine-tuned, into
    `base_vs_residual.mp4` (0 = no video)."""
    eval_seed: int = 10_000
    """First seed of the evaluation episodes (training episodes use other seeds)."""
    checkpoint_every: int = 10_000
    """Stored transitions between resumable checkpoints."""
    max_actor_lead: int = 1000
    """Actors wait between batches while the learner is more than this many stored transitions behind
    its update schedule, so actor processes keep the embedded loop's update-to-data ratio instead of
    collecting with stale weights (0 = wait whenever an update is owed)."""
    overlap_updates: bool = True
    """One-process loop, off-policy algorithms: the updates owed for the rows so far run in a second
    thread while the envs take the next step (on a second core), so the explorer acts with weights one
    env step older than in a serial loop. False: step, then update, in turn."""
    device: str = "auto"
    """torch device of the learner: auto (cuda if available) | cpu | cuda."""
    torch_threads: int = 0
    """torch CPU threads per process; 0 = half the usable cores (1 on a 2-core machine: never oversubscribe)."""
    profile: Literal["gpu", "cpu"] = "gpu"
    """Which hyper-parameter profile this config is (recorded in the run)."""
    default_base: DefaultBaseConfig = field(default_factory=DefaultBaseConfig)
    """How the embedded default base is made when `base` is empty."""

    def __post_init__(self) -> None:
        for name in ("total_env_steps", "n_envs", "eval_every", "eval_episodes", "final_eval_episodes",
                     "checkpoint_every"):
            check_range(name, getattr(self, name), 1, None)
        check_range("n_action_steps", self.n_action_steps, 0, None)
        check_range("final_videos", self.final_videos, 0, None)
        check_range("max_actor_lead", self.max_actor_lead, 0, None)
        check_range("torch_threads", self.torch_threads, 0, None)

    @property
    def uses_base(self) -> bool:
        return self.base.lower() != "none"


# ==================================================================================== the two sides
@dataclass
class EnvInfo:
    """What both sides know of the environment as the algorithm sees it."""

    obs_dim: int
    """Do: observation features (the normalised state)."""
    act_dim: int
    """Da: action dims, normalised to [-1, 1] by the task's action bounds."""
    residual_mask: np.ndarray
    """(Da,) 0/1: dims a residual may change (the base's demos used them, not frozen by the config)."""
    base: Any | None = None
    """The frozen base policy as loaded (None without one); an algorithm that fine-tunes the policy
    itself starts from a copy of it."""
    scaler: Any | None = None
    """The task's `ActionScaler` (physical actions <-> [-1, 1]), for explorers that act in raw units."""


class Explorer(ABC):
    """Actor side: acts in N envs with the latest weights and turns their steps into rows."""

    on_policy: ClassVar[bool] = False
    """True when rows must be trained on by the weights that made them (actors send each rollout at
    once and wait for the next weights)."""
    raw_obs: ClassVar[bool] = False
    """True when `act` also takes `raw=`: the task's raw observation dicts of the N envs (a chunk
    policy's observation windows are built from them)."""

    @abstractmethod
    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Take the learner's latest `weights()`."""

    @abstractmethod
    def act(self, obs: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Exploring action for obs features (N, Do) and base actions (N, Da): the combined action
        (N, Da), clamped to [-1, 1], plus per-env extras `observe` needs (e.g. log-probabilities)."""

    @abstractmethod
    def observe(self, obs: np.ndarray, base: np.ndarray, action: np.ndarray, extras: dict[str, np.ndarray],
                step: VecStep) -> dict[str, np.ndarray] | None:
        """The rows (each {key: (n, ...)}) completed by this step, or None. `step.valid[i]` False
        means env i's step was dropped (non-finite data; the env has been reset)."""


class Learner(ABC):
    """Learner side: stores nothing itself (the spine does), updates on rows, hands out weights."""

    row_schema: RowSchema
    """Shape (without the row dim) and dtype of every key of a stored row (`policy_version` is added
    by the spine). Rows are validated against it before they are stored or added."""
    env_steps_per_row: int = 1
    """Env steps one stored row stands for: the budget (`total_env_steps`) and the evaluation and
    checkpoint cadences count `rows * env_steps_per_row` (a chunk-level learner: its chunk's Ta)."""

    def report(self) -> dict[str, Any]:
        """What the algorithm adds to the run's report.json (e.g. RL-100's round decisions); a str
        under "results_md" is appended to results.md."""
        return {}

    @abstractmethod
    def add(self, rows: dict[str, np.ndarray]) -> None:
        """Take validated rows {key: (n, ...)} (also called when a resumed run replays its rows)."""

    @abstractmethod
    def updates_owed(self) -> int:
        """Updates the schedule asks for now, given the rows added and the updates done."""

    @abstractmethod
    def rows_ahead(self) -> int:
        """Rows added that the updates done do not yet account for (actors wait while this exceeds
        `max_actor_lead`)."""

    @abstractmethod
    def update(self) -> dict[str, float]:
        """One update (one gradient step of the schedule's unit); returns scalar metrics."""

    @abstractmethod
    def weights(self) -> dict[str, np.ndarray]:
        """What an explorer needs to act (CPU numpy arrays)."""

    @abstractmethod
    def eval_policy(self) -> tuple[Any | None, ResidualFn | None]:
        """(policy to evaluate in place of the base or None, deterministic residual or None)."""

    @abstractmethod
    def save_policy(self, run_dir: Path) -> None:
        """Write the run's policy artefact, the file `Algorithm.load_policy` reads."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything but the rows needed to resume (networks, optimisers, counters)."""

    @abstractmethod
    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore `state_dict()`; rows are replayed through `add` before this is called."""

    @property
    @abstractmethod
    def n_updates(self) -> int:
        """Updates done so far (the weights' version)."""


@dataclass(frozen=True)
class Algorithm:
    """The registry record an algorithm module exposes as `ALGORITHM`."""

    name: str
    """`--algo` name."""
    config_class: type
    """Its config dataclass (subclass of RLConfig)."""
    explorer: Callable[[Any, EnvInfo, int], Explorer]
    """`explorer(cfg, env_info, seed)`: the actor side."""
    learner: Callable[[Setup], Learner]
    """`learner(setup)`: the learner side."""
    load_policy: Callable[[Path], Any]
    """Reads a finished run's artefact: the deterministic residual (N, Do), (N, Da) -> (N, Da), or a
    chunk policy (anything with `predict_chunk`) that acts alone."""
    description: str = ""
    """One line for `--help` and run reports."""
    cpu_profile: str | None = None
    """configs/ path of the profile picked when no GPU is present (None: the dataclass defaults)."""
    residual: bool = True
    """True when the learnt policy is a correction on the frozen base (zero at initialisation)."""
    runs_base: bool = True
    """False when the explorer acts with its own copy of the policy: the envs then do not run the
    frozen base (its action is 0), which would only cost inference."""
    accepts_interventions: bool = False
    """True when a person's actions can be learnt from (off-policy: rows with the executed action)."""

    @property
    def kind(self) -> str:
        return "residual" if self.residual else "policy"


def get_algorithm(name: str) -> Algorithm:
    """The algorithm named `name` (a registry name, or a module path defining `ALGORITHM`)."""
    module = ALGORITHMS.get(name, name)
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        known = ", ".join(ALGORITHMS)
        raise ValueError(f"--algo {name}: not one of {known} and not an importable module ({e})") from None
    algo = getattr(mod, "ALGORITHM", None)
    if not isinstance(algo, Algorithm):
        raise ValueError(f"--algo {name}: module {module} defines no ALGORITHM = robo.learn.algo.Algorithm(...)")
    return algo


# ==================================================================================== run records
RUN_RECORD = "run.json"


def write_run_record(run_dir: Path, algo: Algorithm, cfg: Any, **extra: Any) -> None:
    """`run.json`: which algorithm made this run (and on what), so readers pick the right loader."""
    from robo.data.atomic import atomic_write_json

    record = {"algorithm": algo.name, "kind": algo.kind, "task": getattr(cfg, "task", None),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}
    atomic_write_json(Path(run_dir) / RUN_RECORD, record)


def read_run_record(run_dir: str | Path) -> dict[str, Any]:
    """The run record of a run folder; runs made before records existed are recognised by their files."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_RECORD
    if path.is_file():
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a valid run record ({' '.join(str(e).split())})") from None
        if not isinstance(record, dict) or not isinstance(record.get("algorithm"), str):
            raise ValueError(f"{path}: not a valid run record (no 'algorithm')")
        return record
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    for filename, name in (("residual_actor.pt", "td3"), ("residual_ppo.pt", "ppo")):
        if (run_dir / filename).is_file():
            return {"algorithm": name, "kind": "residual", "inferred": True}
    raise FileNotFoundError(f"{run_dir}: no {RUN_RECORD} and no policy file: not a finished robo RL run")


@dataclass
class LoadedRun:
    """A finished run as its readers need it (`load_run`)."""

    algo: Algorithm
    residual: ResidualFn | None
    """The deterministic policy: a residual on the base, or the whole action (`algo.residual` False);
    None when the run's artefact is a chunk policy (`policy`)."""
    record: dict[str, Any]
    stats: dict | None
    """The stats its observation features were normalised with (None: the base's own)."""
    policy: Any | None = None
    """The fine-tuned chunk policy (a robo checkpoint) of a run that trained the policy itself."""

    @property
    def base_checkpoint(self) -> str | None:
        """The frozen base the run was trained on (None for a run without a base)."""
        return self.record.get("base_checkpoint") if self.algo.residual else None

    @property
    def task(self) -> str | None:
        return self.record.get("task")


FEATURE_STATS = "feature_stats.json"


def load_run(run_dir: str | Path) -> LoadedRun:
    """A finished run folder, whatever algorithm made it: its loader comes from the run record."""
    run_dir = Path(run_dir)
    record = read_run_record(run_dir)
    algo = get_algorithm(record["algorithm"])
    stats = None
    if (run_dir / FEATURE_STATS).is_file():
        try:
            stats = json.loads((run_dir / FEATURE_STATS).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{run_dir / FEATURE_STATS}: not valid JSON ({' '.join(str(e).split())})") from None
    artefact = algo.load_policy(run_dir)
    if hasattr(artefact, "predict_chunk"):
        return LoadedRun(algo, None, record, stats, policy=artefact)
    return LoadedRun(algo, artefact, record, stats)


# ==================================================================================== shared pieces
@dataclass
class UpdateSchedule:
    """The update-to-data schedule: after n rows, `floor(ratio * (n - offset))` updates are due.

    Off-policy: ratio = updates per row (UTD), offset = the warm-up rows (`learning_starts`).
    On-policy: ratio = 1 / rows per update (one update per full rollout), offset 0."""

    ratio: float
    offset: int = 0

    def due(self, n_rows: int) -> int:
        return max(0, int(np.floor(self.ratio * (n_rows - self.offset) + 1e-9)))

    def rows_covered(self, n_updates: int) -> float:
        """Rows the first `n_updates` updates account for (the inverse of `due`)."""
        return self.offset + n_updates / self.ratio


def module_weights(module: Any, prefix: str) -> dict[str, np.ndarray]:
    """A torch module's state as CPU numpy arrays named `prefix + key` (what travels to explorers)."""
    return {prefix + k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_module_weights(module: Any, weights: dict[str, np.ndarray], prefix: str) -> None:
    """Load `module_weights` output back into a module of the same shape (copies the arrays)."""
    import torch

    sd = {k[len(prefix):]: torch.as_tensor(np.array(v)) for k, v in weights.items() if k.startswith(prefix)}
    module.load_state_dict(sd)


def float_schema(**dims: int) -> RowSchema:
    """A row schema of float32 keys: `float_schema(obs=20, reward=0)` (0 = a scalar per row)."""
    return {k: ((d,) if d else (), np.dtype(np.float32)) for k, d in dims.items()}


def pick_profile(profile: str = "auto") -> str:
    """`auto` -> gpu when CUDA is available, else cpu."""
    if profile == "auto":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    if profile not in ("cpu", "gpu"):
        raise ValueError(f"profile={profile!r} is not one of ['auto', 'cpu', 'gpu']")
    return profile


def load_rl_config(algo: Algorithm, path: str | Path | None = None, overrides: list[str] | None = None, *,
                   profile: str = "auto", resume_dir: str | Path | None = None) -> Any:
    """An algorithm's config: defaults < its CPU profile (no GPU) < YAML at `path` < `key=value`
    overrides; for a resumed run, the run's saved config < overrides."""
    from robo.config import load_config, resolve_config_path

    path = resolve_config_path(path) if path is not None else None
    if resume_dir is not None:
        saved = Path(resume_dir) / "config.yaml"
        if not saved.is_file():
            raise FileNotFoundError(f"cannot resume: {saved} not found")
        return load_config(algo.config_class, saved, overrides)
    base = None
    if algo.cpu_profile and pick_profile(profile) == "cpu":
        base = load_config(algo.config_class, packaged_config(algo.cpu_profile))
    return load_config(algo.config_class, path, overrides, base=base)


def packaged_config(rel: str) -> Path:
    """A file of robo's packaged configs/ (e.g. `train/residual_td3_cpu.yaml`)."""
    import importlib.resources

    return Path(str(importlib.resources.files("robo.configs").joinpath(rel)))
