"""A 1-step consistency head: distil a K-step flow or DDIM policy into a 1-step policy (`robo distill`).

RL-100's recipe (`distill_loss_type: action_same_noise`): the student's single step from the initial
noise x_0 regresses the teacher's K-step deterministic chain from the *same* x_0,

    L = || student(x_0, s) - stopgrad(teacher_K(x_0, s)) ||^2       (normalised action space, the whole chunk)

at states s of the teacher's dataset. The student is an ordinary flow policy with one Euler step,
student(x_0, s) = x_0 + v(x_0, 0, s), with the teacher's encoders and backbone (initialised from its
weights), saved as an ordinary robo checkpoint: `robo eval`, `robo serve`, a residual's `--base`,
ReinFlow (K = 1) and deployment take it like any policy. Its `train_info.json` names the teacher.
The held-out match (episodes the student never saw) is measured at the end: the error of the executed
actions against the teacher's from the same noise, beside the teacher's own spread between two noises.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robo.config import check_range, save_config, to_dict
from robo.learn.common import ProgressLine, configure_threads, pick_device, set_seed
from robo.spec import STATE


@dataclass
class DistillConfig:
    """Settings of `robo distill`."""

    policy: str = ""
    """Teacher checkpoint (a flow or diffusion policy; a run folder works)."""
    data: str = ""
    """Dataset whose states the student is trained on; empty = the one recorded with the teacher."""
    out: str = ""
    """Output checkpoint folder; empty = <teacher run>/distilled_1step."""
    teacher_steps: int = 0
    """K of the teacher's chain (0 = its own num_inference_steps, e.g. 4 Euler or 10 DDIM steps)."""
    steps: int = 3000
    """Gradient steps."""
    batch_size: int = 256
    """States (each with a fresh initial noise) per step."""
    lr: float = 3e-4
    """AdamW learning rate (cosine-decayed to 0)."""
    holdout_episodes: int = 5
    """Dataset episodes held out of training to measure the match (0 = none)."""
    seed: int = 0
    """Seed of the batches and the noise."""
    device: str = "auto"
    """torch device: auto | cpu | cuda."""
    torch_threads: int = 0
    """torch CPU threads; 0 = half the usable cores (robo.learn.common.configure_threads)."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            check_range(name, getattr(self, name), 1, None)
        check_range("teacher_steps", self.teacher_steps, 0, None)
        check_range("holdout_episodes", self.holdout_episodes, 0, None)
        check_range("lr", self.lr, 0.0, 1.0)


def make_student(teacher: Any) -> Any:
    """A 1-step flow policy with the teacher's encoders and backbone, initialised from its weights."""
    from robo.policies import FlowConfig, FlowPolicy
    from robo.policies.common.config import ChunkPolicyConfig

    shared = {f.name: getattr(teacher.config, f.name) for f in fields(ChunkPolicyConfig) if f.name != "name"}
    extra = {f.name: getattr(teacher.config, f.name) for f in fields(FlowConfig)
             if f.name not in shared and f.name != "name" and hasattr(teacher.config, f.name)}
    cfg = FlowConfig(**{**shared, **extra, "num_inference_steps": 1})
    student = FlowPolicy(cfg, teacher.spec, teacher.stats)
    student.load_state_dict(teacher.state_dict())  # same modules: encoders, backbone, normalisers
    return student.to(teacher.device)


def state_windows(dataset: Any, episodes: list[int], n_obs_steps: int) -> np.ndarray:
    """(N, To, Ds) state windows of every frame of `episodes` (padded at the start like the BC windows)."""
    out = []
    for ep in episodes:
        states = np.asarray(dataset.episode(ep)[STATE], np.float32)
        padded = np.concatenate([np.repeat(states[:1], n_obs_steps - 1, 0), states])
        out.append(np.stack([padded[t : t + n_obs_steps] for t in range(len(states))]))
    return np.concatenate(out)


def final_sample(policy: Any, obs: torch.Tensor, x0: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """The deterministic chain's last sample (B, T, Da) from initial noise x0 (gradients flow)."""
    return policy.denoise_chain({STATE: obs}, 0.0, x_init=x0, num_inference_steps=k).samples[-1]


@torch.no_grad()
def match(student: Any, teacher: Any, obs: np.ndarray, k: int, seed: int, batch: int = 1024) -> dict[str, float]:
    """Held-out match of the executed actions (normalised units, range [-1, 1]): the student against the
    teacher from the same noise, and the teacher against itself from another noise (its own spread)."""
    c = teacher.config
    ta = slice(c.n_obs_steps - 1, c.n_obs_steps - 1 + c.n_action_steps)
    gen = torch.Generator().manual_seed(seed)
    errs, spread = [], []
    for s in range(0, len(obs), batch):
        o = torch.as_tensor(obs[s : s + batch], device=teacher.device)
        x0, x1 = (torch.randn((len(o), c.horizon, teacher.action_dim), generator=gen).to(teacher.device)
                  for _ in range(2))
        t0 = final_sample(teacher, o, x0, k).clamp(-1, 1)[:, ta]
        errs.append((final_sample(student, o, x0).clamp(-1, 1)[:, ta] - t0).abs().flatten(1).cpu())
        spread.append((final_sample(teacher, o, x1, k).clamp(-1, 1)[:, ta] - t0).abs().flatten(1).cpu())
    e, sp = torch.cat(errs), torch.cat(spread)
    return {"mean_abs_error": e.mean().item(), "p95_abs_error": e.quantile(0.95).item(),
            "teacher_spread": sp.mean().item(), "n_states": len(obs)}


def distill(cfg: DistillConfig, teacher: Any | None = None) -> dict[str, Any]:
    """Train the 1-step student of `cfg.policy`; writes the checkpoint to `cfg.out` and returns a summary
    (held-out match, wall clock)."""
    from robo.data import Dataset
    from robo.policies import checkpoint_dir, checkpoint_task, load_policy, read_train_info

    configure_threads(cfg.torch_threads)
    set_seed(cfg.seed)
    device = pick_device(cfg.device)
    ckpt = checkpoint_dir(cfg.policy)
    teacher = (teacher or load_policy(ckpt)).to(device).eval()
    if not hasattr(teacher, "denoise_chain"):
        raise ValueError(f"--policy {cfg.policy}: not a diffusion or flow checkpoint (no denoising chain)")
    if teacher.image_keys:
        raise ValueError(f"--policy {cfg.policy}: distillation here takes state-only policies "
                         f"(the teacher uses cameras {list(teacher.image_keys)})")
    info = read_train_info(ckpt)
    data = cfg.data or info.get("dataset") or ""
    if not data or not Path(data).is_dir():
        raise FileNotFoundError(f"no dataset for the student's states: pass --data (teacher records {data!r})")
    ds = Dataset(data)
    k = cfg.teacher_steps or teacher.config.num_inference_steps
    n_hold = min(cfg.holdout_episodes, ds.num_episodes - 1)
    train_obs = state_windows(ds, list(range(ds.num_episodes - n_hold)), teacher.config.n_obs_steps)
    held_obs = state_windows(ds, list(range(ds.num_episodes - n_hold, ds.num_episodes)), teacher.config.n_obs_steps)
    student = make_student(teacher).train()
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    obs_all = torch.as_tensor(train_obs, device=device)
    shape = (cfg.batch_size, teacher.config.horizon, teacher.action_dim)
    progress, t0, losses = ProgressLine(cfg.steps, "distill"), time.monotonic(), []
    for step in range(cfg.steps):
        obs = obs_all[torch.as_tensor(rng.integers(0, len(obs_all), cfg.batch_size), device=device)]
        x0 = torch.randn(shape, generator=gen).to(device)
        with torch.no_grad():
            target = final_sample(teacher, obs, x0, k).clamp(-1, 1)
        loss = (final_sample(student, obs, x0) - target).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 10.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        progress.update(step + 1, {"loss": float(np.mean(losses[-50:]))}, force=step + 1 == cfg.steps)
    progress.close()
    student.eval()
    out = Path(cfg.out) if cfg.out else ckpt.parent / "distilled_1step"
    student.cpu().save(out)
    summary: dict[str, Any] = {"checkpoint": str(out), "teacher": str(ckpt), "teacher_steps": k,
                               "loss_last50": float(np.mean(losses[-50:])), "wall_clock_s": time.monotonic() - t0}
    if len(held_obs):
        summary["holdout"] = match(student.to(device), teacher, held_obs, k, cfg.seed + 1)
    save_config(cfg, out / "distill_config.yaml")
    (out / "train_info.json").write_text(json.dumps({
        "env_id": checkpoint_task(ckpt) or info.get("env_id"), "dataset": str(Path(data).resolve()), "policy": "flow",
        "distilled_from": str(ckpt), "teacher_policy": teacher.config.name, "teacher_steps": k,
        "method": "consistency distillation, same initial noise (RL-100 action_same_noise)",
        "distill_config": to_dict(cfg), "holdout": summary.get("holdout")}, indent=2))
    return summary
