"""Behaviour cloning of action-chunk policies (diffusion, flow) from a robo dataset.

config -> data -> loop (AdamW, warm-up + cosine LR, EMA weights, progress line, TensorBoard, periodic
eval) -> checkpoint folder (EMA weights + config + stats + spec) that `robo eval` and
`robo train --residual --base` load.

Runs survive interruption: every `checkpoint_every` steps (and on Ctrl-C / SIGTERM) the run folder gets
a usable `checkpoint/` (EMA weights) and `resume/state.pt` (weights, EMA, optimiser, RNG, step);
`train_bc(..., resume=True)` (`robo train bc --resume <run>`) continues from there, on the same
learning-rate schedule and batch order.

Data-parallel (`robo train bc --devices N`, robo.learn.ddp): with torch.distributed initialised, every
rank draws the same global batch order, takes its share of each batch (rank r: windows r, r+N, ...),
and a torch `DistributedDataParallel` wrapper averages the gradients, so a step is one step of the
global batch, as in one process; each rank draws its own noise. Rank 0 alone logs, evaluates and
writes checkpoints (the same folder and format as one process).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robo.config import check_range, save_config, to_dict
from robo.data.atomic import atomic_path, atomic_write_json
from robo.data.video_cache import VideoCacheConfig
from robo.learn.common import Logger, ProgressLine, StopSignal, configure_threads, pick_device, set_seed


@dataclass
class BCTrainConfig:
    """Training settings of `robo train bc` (the policy's own settings live under `policy:`)."""

    data: str = ""
    """Dataset folder (robo / LeRobot v3 layout)."""
    task: str = ""
    """Task id for periodic evaluation; empty = the env id recorded in the dataset, if any."""
    out: str = ""
    """Run folder; empty = runs/bc/<policy>__<dataset>__seed<seed>__<time>."""
    steps: int = 8000
    """Gradient steps. Flow-MLP on PandaPegInsert-v0 (noise-0.5 demos, 50 eval episodes): 50 demos x 3000
    steps -> 32% success, 50 x 8000 -> 34%, 100 x 8000 -> 48%, 200 x 8000 -> 74%."""
    batch_size: int = 64
    """Training windows per step."""
    lr: float = 3e-4
    """Peak learning rate (AdamW)."""
    weight_decay: float = 1e-6
    """AdamW weight decay."""
    warmup_steps: int = 200
    """Linear LR warm-up steps, then cosine decay to 0."""
    ema_decay: float = 0.995
    """EMA decay of the weights that are saved and evaluated."""
    grad_clip: float = 10.0
    """Gradient-norm clip."""
    eval_every: int = 0
    """Steps between evaluations in the task (0 = only at the end if `eval_episodes` > 0)."""
    eval_episodes: int = 0
    """Episodes per evaluation (0 = no evaluation)."""
    seed: int = 0
    """Seed for init, batching and noise."""
    device: str = "auto"
    """torch device: auto | cpu | cuda."""
    torch_threads: int = 0
    """torch CPU threads; 0 = half the usable cores (1 on a 2-core machine: never oversubscribe it)."""
    log_every: int = 50
    """Steps between logged scalars."""
    checkpoint_every: int = 1000
    """Steps between checkpoints (the usable `checkpoint/` and the resumable `resume/state.pt`)."""
    video: VideoCacheConfig = field(default_factory=VideoCacheConfig)
    """Decoded-video memory budget of the training windows (`video.cache_mb=...`; robo.data.video_cache)."""
    extra_data: tuple[str, ...] = ()
    """More datasets trained on with `data` (`robo train bc --data <demos> --data <sessions>...`), e.g.
    `robo intervene` sessions. In every dataset a window is trained on only where each frame of its action
    chunk was acted by a person or a script (action_source human / scripted): policy, residual and hold
    frames never become targets (see `human_windows`)."""
    extra_fraction: float = 0.0
    """Mix ratio: the share of each batch drawn from `extra_data` (0 = in proportion to their windows,
    plain aggregation as in DAgger)."""
    teach_segments: tuple[str, ...] = ("correction",)
    """Which human-in-the-loop segments (robo.hil) are trained on: frames outside sessions always are.
    Recovery is recorded but not taught by default: on PandaLift-v0 (scripted operator, 20 RaC episodes,
    1000 steps from a 44% base, 50 seeds) recovery + correction reached 56%, correction alone 88%: a
    recovery drives back along the policy's own path, the opposite of the task in states like the demos'."""
    init: str = ""
    """Checkpoint to start from (its weights and normalisation); empty = a new policy. A retraining round
    (`robo intervene --rounds`) continues the policy whose mistakes the interventions corrected."""

    def __post_init__(self) -> None:
        check_range("steps", self.steps, 1, None)
        check_range("batch_size", self.batch_size, 1, None)
        check_range("lr", self.lr, 0.0, 1.0)
        check_range("ema_decay", self.ema_decay, 0.0, 1.0)
        check_range("eval_episodes", self.eval_episodes, 0, None)
        check_range("checkpoint_every", self.checkpoint_every, 1, None)
        check_range("extra_fraction", self.extra_fraction, 0.0, 1.0)
        if self.extra_fraction > 0 and not self.extra_data:
            raise ValueError(f"extra_fraction={self.extra_fraction} needs extra_data (the datasets to mix in)")


#: who may teach the policy: frames a person (teleop, interventions) or a scripted expert acted
TEACHER_SOURCES = ("human", "scripted")


def human_windows(ds: Any, windows: Any, teach_segments: tuple[str, ...] = ("correction",)) -> Any:
    """`windows` of `ds` kept only where the whole action chunk was acted by a teacher (TEACHER_SOURCES).

    Whole windows are dropped rather than loss-masked per step: a chunk that runs into the policy's own
    actions would otherwise be half a correction and half the mistake it corrects, and dropping works
    with every policy's loss unchanged. Of a session's frames only `teach_segments` teach (frames
    outside sessions have segment ""). Datasets without `action_source` (LeRobot's) keep every window.
    """
    if "action_source" not in ds.columns:
        return windows
    ok = np.isin(ds.column("action_source"), TEACHER_SOURCES)
    if "segment" in ds.columns:
        segment = ds.column("segment")
        ok &= (segment == "") | np.isin(segment, teach_segments)
    return windows.keep(windows.chunk_ok(ok))


class MixedWindows:
    """Windows of several datasets as one: `epoch(rng)` yields the first's and the others' windows,
    a share `fraction` from the others (0: each window once, in proportion to the counts)."""

    def __init__(self, parts: list[Any], fraction: float = 0.0) -> None:
        self.parts = [p for p in parts if len(p)]
        if not self.parts:
            raise ValueError("no training windows: no dataset has a window whose action chunk a teacher acted")
        self.fraction = float(fraction) if len(parts) > 1 and len(parts[0]) and len(self.parts) > 1 else 0.0
        self.counts = np.array([len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.counts.sum())

    def epoch(self, rng: np.random.Generator):
        if len(self.parts) == 1:  # one dataset: exactly its own order (draws nothing else from `rng`)
            yield from self.parts[0].epoch(rng)
            return
        if self.fraction == 0.0:
            labels = rng.permutation(np.repeat(np.arange(len(self.parts)), self.counts))
        else:
            extra = self.counts[1:] / self.counts[1:].sum()
            weights = np.concatenate([[1.0 - self.fraction], self.fraction * extra])
            labels = rng.choice(len(self.parts), size=len(self), p=weights)
        iters = [p.epoch(rng) for p in self.parts]
        for k in labels:
            try:
                yield next(iters[k])
            except StopIteration:  # a weighted part drawn more often than it has windows: its next epoch
                iters[k] = self.parts[k].epoch(rng)
                yield next(iters[k])


def merged_stats(datasets: list[Any]) -> dict[str, Any]:
    """The normalisation stats of several datasets together (keys all of them have)."""
    if len(datasets) == 1:
        return datasets[0].stats
    from robo.data.stats import RunningStats, stats_to_json

    per = [d.stats for d in datasets]
    out = {}
    for key in set.intersection(*(set(p) for p in per)):
        merged = RunningStats.from_json(per[0][key])
        for p in per[1:]:
            merged = merged.merge(RunningStats.from_json(p[key]))
        out[key] = merged
    return stats_to_json(out)


def lr_at(step: int, cfg: BCTrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _batches(windows: Any, batch_size: int, rng: np.random.Generator, skip: int = 0):
    """Endless shuffled batches of stacked windows (numpy -> torch), no worker processes needed.

    Epoch by epoch in `windows.epoch(rng)`'s order (video in blocks: cache-sized groups of blocks,
    decoded ahead), dropping each epoch's last partial batch unless it is the only one. `skip` batches
    are drawn and dropped first, so a resumed run continues the same batch order (they are still read:
    the order depends on nothing else)."""
    n = len(windows)
    drawn = 0
    while True:
        items: list[dict[str, np.ndarray]] = []
        for item in windows.epoch(rng):
            items.append(item)
            if len(items) == batch_size:
                drawn += 1
                if drawn > skip:
                    yield _stack(items)
                items = []
        if n < batch_size and items:
            drawn += 1
            if drawn > skip:
                yield _stack(items)


def _stack(items: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.stack([it[k] for it in items])) for k in items[0]}


def train_bc(cfg: BCTrainConfig, policy_name: str, policy_cfg: Any, run_dir: str | Path, *,
             resume: bool = False) -> dict[str, Any]:
    """Train; writes `run_dir/checkpoint` (EMA weights) and returns a summary dict (`interrupted`: True
    when a signal stopped it early, with a resumable state written)."""
    from robo.data import Dataset
    from robo.policies import EMA, make_policy

    run_dir = Path(run_dir)
    state_path = run_dir / "resume" / "state.pt"
    if resume and not state_path.is_file():
        raise FileNotFoundError(f"cannot resume: {state_path} not found (the run never checkpointed)")
    configure_threads(cfg.torch_threads)
    set_seed(cfg.seed)
    device = pick_device(cfg.device)
    datasets = [Dataset(d) for d in (cfg.data, *cfg.extra_data)]
    ds = datasets[0]
    for path, d in zip((cfg.data, *cfg.extra_data), datasets):
        if d.num_episodes == 0:
            raise ValueError(f"{path}: dataset has no episodes")
        if d is not ds and d.spec.features.keys() != ds.spec.features.keys():
            raise ValueError(f"{path}: features {sorted(d.spec.features)} differ from {cfg.data}'s "
                             f"{sorted(ds.spec.features)}")
    if cfg.init:
        from robo.policies import load_policy

        policy = load_policy(cfg.init, map_location=str(device)).train()
        policy_cfg, policy_name = policy.config, policy.name
        if policy.spec.action_dim != ds.spec.action_dim:
            raise ValueError(f"init={cfg.init}: the policy acts in {policy.spec.action_dim}-d, {cfg.data} in "
                             f"{ds.spec.action_dim}-d")
    else:
        policy = make_policy(policy_name, policy_cfg, ds.spec, merged_stats(datasets)).to(device)
    rank, world = _rank_world()
    main = rank == 0
    loss_of: Any = policy.compute_loss
    if world > 1:
        if cfg.batch_size % world:
            raise ValueError(f"batch_size={cfg.batch_size} must be a multiple of the {world} devices")
        from torch.nn.parallel import DistributedDataParallel

        loss_of = DistributedDataParallel(_Loss(policy), device_ids=[device.index] if device.type == "cuda" else None)
        torch.manual_seed(cfg.seed + 7919 * rank)  # each rank its own noise; the weights are rank 0's
    windows = MixedWindows([human_windows(d, d.windows(policy_cfg.n_obs_steps, policy_cfg.horizon, video=cfg.video),
                                          cfg.teach_segments) for d in datasets], cfg.extra_fraction)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "train_config.yaml")
        save_config(policy_cfg, run_dir / "policy_config.yaml")
    task = cfg.task or ds.env_id or ""

    ema = EMA(policy, decay=cfg.ema_decay)
    # fused: one kernel for the whole Adam update (torch defaults to a per-tensor loop on CPU: 15 ms -> 4 ms a step)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    rng = np.random.default_rng(cfg.seed)
    done = {"step": 0, "losses": [], "first_losses": [], "evals": [], "wall_clock_s": 0.0}
    if resume:
        from robo.learn.common import load_torch

        saved = load_torch(state_path)
        policy.load_state_dict(saved["policy"])
        ema.load_state_dict(saved["ema"])
        opt.load_state_dict(saved["opt"])
        torch.set_rng_state(saved["torch_rng"])
        done = saved["done"]
        print(f"resumed {run_dir} at step {done['step']}/{cfg.steps}", flush=True)
    logger: Any = Logger(run_dir) if main else _NoLog()
    batches = _batches(windows, cfg.batch_size, rng, skip=done["step"])
    progress: Any = ProgressLine(cfg.steps, f"bc-{policy_name}", start=done["step"]) if main else _NoLog()
    losses, first_losses, evals = done["losses"], done["first_losses"], done["evals"]
    t0 = time.monotonic()
    stop = StopSignal()

    def save(step: int) -> None:
        if not main:
            return
        _write_checkpoint(run_dir, policy, ema, cfg, policy_name, task, step)
        with atomic_path(state_path) as tmp:
            torch.save({"policy": policy.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                        "torch_rng": torch.get_rng_state(),
                        "done": {"step": step, "losses": losses[-cfg.log_every:], "first_losses": first_losses,
                                 "evals": evals, "wall_clock_s": done["wall_clock_s"] + time.monotonic() - t0}}, tmp)

    policy.train()
    step = done["step"]
    try:
        for step in range(done["step"], cfg.steps):
            if stop.set:
                save(step)
                progress.close()
                return {"interrupted": True, "step": step, "checkpoint": str(run_dir / "checkpoint")}
            batch = {k: v[rank::world].to(device) for k, v in next(batches).items()}
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            loss = loss_of(batch)
            if not torch.isfinite(loss):
                raise RuntimeError(f"BC loss became {loss.item()} at step {step}; lower lr (now {cfg.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
            opt.step()
            ema.update(policy)
            if world > 1:  # the global batch's loss, as one process would log it
                loss = loss.detach().clone()
                torch.distributed.all_reduce(loss)
                loss /= world
            losses.append(loss.item())
            del losses[: -max(50, cfg.log_every)]  # the recent window is all the log and summary need
            if step < 50:
                first_losses.append(loss.item())
            if step % cfg.log_every == 0 or step == cfg.steps - 1:
                logger.log(step, {"losses/bc": float(np.mean(losses[-cfg.log_every:])), "charts/lr": lr_at(step, cfg)})
            progress.update(step + 1, {"loss": float(np.mean(losses[-50:])),
                                       "steps/s": (step + 1 - done["step"]) / max(1e-6, time.monotonic() - t0)},
                            force=step + 1 == cfg.steps)
            if main and cfg.eval_every and task and cfg.eval_episodes and (step + 1) % cfg.eval_every == 0 \
                    and step + 1 < cfg.steps:
                evals.append(_eval(policy, ema, task, cfg, step + 1, logger))
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
                save(step + 1)
    finally:
        stop.restore()
    progress.close()

    summary: dict[str, Any] = {"rank": rank, "world_size": world} if world > 1 else {}
    if not main:  # rank 0 writes the run
        return {**summary, "checkpoint": str(run_dir / "checkpoint"), "loss_first50": float(np.mean(first_losses)),
                "loss_last50": float(np.mean(losses[-50:]))}
    ckpt = _write_checkpoint(run_dir, policy, ema, cfg, policy_name, task, cfg.steps)
    summary = {
        **summary,
        "checkpoint": str(ckpt),
        "loss_first50": float(np.mean(first_losses)),
        "loss_last50": float(np.mean(losses[-50:])),
        "wall_clock_s": done["wall_clock_s"] + time.monotonic() - t0,
    }
    if task and cfg.eval_episodes:
        evals.append(_eval(policy, ema, task, cfg, cfg.steps, logger))
        summary["eval"] = evals[-1]
    summary["evals"] = evals
    atomic_write_json(run_dir / "summary.json", summary)
    logger.close()
    return summary


def _rank_world() -> tuple[int, int]:
    """(rank, world size) of torch.distributed, (0, 1) when it is not initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _Loss(torch.nn.Module):
    """The policy's `compute_loss` as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.policy.compute_loss(batch)


class _NoLog:
    """Logger / progress line of ranks other than 0: nothing written."""

    def log(self, *_: Any, **__: Any) -> None: ...
    def update(self, *_: Any, **__: Any) -> None: ...
    def close(self) -> None: ...


def _write_checkpoint(run_dir: Path, policy: Any, ema: Any, cfg: BCTrainConfig, policy_name: str, task: str,
                      step: int) -> Path:
    """`run_dir/checkpoint`: the EMA weights as a loadable policy, with train_info.json (written last)."""
    ckpt = run_dir / "checkpoint"
    _ema_copy(policy, ema).save(ckpt)
    info = {"dataset": str(Path(cfg.data).resolve()), "env_id": task, "policy": policy_name,
            "steps": step, "train_config": to_dict(cfg)}
    atomic_write_json(ckpt / "train_info.json", info)
    policy.train()
    return ckpt


def _ema_copy(policy: Any, ema: Any) -> Any:
    import copy

    shadow = copy.deepcopy(policy)
    ema.copy_to(shadow)
    return shadow.eval()


def _eval(policy: Any, ema: Any, task: str, cfg: BCTrainConfig, step: int, logger: Logger) -> dict[str, float]:
    from robo.learn.evaluate import evaluate

    shadow = _ema_copy(policy, ema)
    result = evaluate(task, shadow, cfg.eval_episodes, seed=10_000)
    logger.log(step, {"eval/success_rate": result.success_rate, "eval/mean_length": result.mean_length})
    print(f"\n[step {step}] {result.summary('eval')}", flush=True)
    return {"step": step, "success_rate": result.success_rate, "mean_length": result.mean_length}
