"""Residual off-policy RL on a frozen chunked BC base (after ResFiT, Ankile et al. 2025).

Reads top to bottom: config -> agent (networks + `update(batch) -> metrics`) -> demo relabelling ->
the training loop. Shared pieces (envs seen through the base, replay, evaluation, logging) come from
robo.learn; nothing here is specific to one task.

    a_t = clamp(base_t + tanh(actor([obs_t, base_t])) * scale + explore_noise, -1, 1)

The critic is a LayerNorm ensemble Q_h(obs, base, a) on the combined clamped action; TD targets use
n-step returns and the min over 2 random target heads (REDQ-style); the actor maximises the mean
over heads. Batches are half demos (with base actions relabelled by running the base on the demo
states), half online data. Training starts with `learning_starts` env steps of base + small uniform
noise, then `critic_warmup_updates` critic-only updates.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from robo.config import check_range, save_config
from robo.learn.common import Logger, ProgressLine, pick_device, set_seed
from robo.learn.evaluate import EvalResult, evaluate
from robo.learn.pipeline import DefaultBaseConfig
from robo.learn.replay import NStepAccumulator, ReplayBuffer, Step, sample_mixed
from robo.learn.residual_env import ActionScaler, BaseRunner, ResidualVecEnv, StateNormalizer
from robo.policies.residual.model import CriticEnsemble, ResidualActor
from robo.spec import ACTION, STATE


# ==================================================================================== config
@dataclass
class ResidualTD3Config:
    """Every hyper-parameter of `robo train --residual` (defaults: ResFiT's, sized for a GPU).

    configs/train/residual_td3_cpu.yaml holds the lighter profile picked when no GPU is present.
    """

    task: str = "PandaPegInsert-v0"
    """Gymnasium task id (robo tasks or any env exposing the same obs/action spec)."""
    base: str = ""
    """BC checkpoint folder of the frozen base; empty = the embedded default (demos + BC, cached)."""
    demos: str = ""
    """Dataset folder for the demo buffer; empty = the dataset recorded in the base checkpoint."""
    seed: int = 0
    """Seed for networks, exploration and training episodes."""
    total_env_steps: int = 300_000
    """Environment steps to train for (all envs together)."""
    n_envs: int = 1
    """Parallel environments stepped in lockstep (base chunks predicted in one batch)."""
    n_action_steps: int = 0
    """Open-loop execution horizon of the base chunks; 0 = the base's own `n_action_steps`."""
    action_scale: float = 0.1
    """Residual bound in normalised action units: residual in [-scale, scale]."""
    actor_hidden: int = 1024
    """Hidden width of the residual actor MLP."""
    critic_hidden: int = 1024
    """Hidden width of each critic head."""
    n_layers: int = 2
    """Hidden layers in actor and critic MLPs (with LayerNorm)."""
    num_q: int = 10
    """Critic ensemble heads."""
    num_q_target: int = 2
    """Random heads whose minimum forms the TD target."""
    gamma: float = 0.99
    """Discount per env step."""
    n_step: int = 3
    """n-step returns."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    batch_size: int = 256
    """Transitions per update (demo_fraction of them from the demo buffer)."""
    demo_fraction: float = 0.5
    """Share of each batch drawn from demos (RLPD symmetric sampling)."""
    utd: int = 4
    """Critic updates per env step (update-to-data ratio)."""
    actor_updates_per_step: int = 1
    """Actor updates per env step after the critic warm-up."""
    actor_lr: float = 1e-6
    """Residual actor learning rate (small: the base is already good)."""
    critic_lr: float = 1e-4
    """Critic learning rate."""
    grad_clip: float = 1.0
    """Gradient-norm clip for actor and critic."""
    mask_unused_dims: bool = True
    """Residual only on action dims the base's demos used (a never-commanded dim, e.g. tilt, drifts)."""
    frozen_action_dims: list[int] = field(default_factory=list)
    """Action dims the residual never changes, e.g. [3, 4] (roll, pitch of the Panda tasks)."""
    actor_q: Literal["mean", "min"] = "mean"
    """Critic heads' reduction in the actor loss: mean (ResFiT) | min (pessimistic: the actor cannot
    exploit one head's over-estimate)."""
    residual_penalty: float = 0.0
    """Weight of mean((residual / action_scale)^2) in the actor loss: keeps the residual at 0 unless Q says."""
    explore_std: float = 0.05
    """Gaussian exploration noise on the residual (normalised units)."""
    target_noise_std: float = 0.05
    """Target policy smoothing noise std (normalised units)."""
    target_noise_clip: float = 0.1
    """Target policy smoothing noise clip."""
    learning_starts: int = 10_000
    """Env steps of base + uniform noise before any update."""
    warmup_noise: float = 0.05
    """Half-width of the uniform noise added to the base during `learning_starts`."""
    critic_warmup_updates: int = 10_000
    """Critic-only updates after `learning_starts`, before the actor trains."""
    buffer_size: int = 300_000
    """Online replay capacity (transitions)."""
    eval_every: int = 10_000
    """Env steps between evaluations (fixed seeds, deterministic residual)."""
    eval_episodes: int = 50
    """Episodes per periodic evaluation."""
    final_eval_episodes: int = 100
    """Episodes of the final base vs base+residual comparison."""
    final_videos: int = 4
    """Seeds of the final evaluation rendered side by side, base | base + residual, into
    `base_vs_residual.mp4` (0 = no video)."""
    eval_seed: int = 10_000
    """First seed of the evaluation episodes (training episodes use other seeds)."""
    checkpoint_every: int = 10_000
    """Env steps between resumable checkpoints."""
    max_actor_lead: int = 1000
    """With `--actors N`: actors wait between episodes while the learner still owes updates for more
    than this many stored env steps, so the run keeps the embedded loop's update-to-data ratio instead
    of collecting with stale weights (0 = actors never wait)."""
    device: str = "auto"
    """torch device: auto (cuda if available) | cpu | cuda."""
    torch_threads: int = 0
    """torch CPU threads; 0 = torch's default."""
    profile: Literal["gpu", "cpu"] = "gpu"
    """Which hyper-parameter profile this config is (recorded in the run)."""
    default_base: DefaultBaseConfig = field(default_factory=DefaultBaseConfig)
    """How the embedded default base is made when `base` is empty."""

    def __post_init__(self) -> None:
        check_range("action_scale", self.action_scale, 0.0, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("demo_fraction", self.demo_fraction, 0.0, 1.0)
        check_range("tau", self.tau, 0.0, 1.0)
        if self.max_actor_lead < 0:
            raise ValueError(f"max_actor_lead={self.max_actor_lead} must be >= 0 (0 = actors never wait)")
        for name in ("total_env_steps", "n_envs", "num_q", "n_step", "batch_size", "utd", "buffer_size",
                     "eval_episodes", "final_eval_episodes", "actor_hidden", "critic_hidden"):
            check_range(name, getattr(self, name), 1, None)
        check_range("num_q_target", self.num_q_target, 1, self.num_q)
        check_range("n_action_steps", self.n_action_steps, 0, None)
        check_range("final_videos", self.final_videos, 0, None)
        if self.actor_q not in ("mean", "min"):
            raise ValueError(f"actor_q={self.actor_q!r} is not one of ['mean', 'min']")


# ==================================================================================== agent
class ResidualTD3Agent:
    """Residual actor + critic ensemble + targets + optimisers. `update(batch) -> metrics`."""

    def __init__(self, cfg: ResidualTD3Config, obs_dim: int, act_dim: int, device: torch.device):
        self.cfg = cfg
        self.device = device
        self.actor = ResidualActor(obs_dim, act_dim, cfg.actor_hidden, cfg.n_layers, cfg.action_scale).to(device)
        self.critic = CriticEnsemble(obs_dim, act_dim, cfg.num_q, cfg.critic_hidden, cfg.n_layers).to(device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, fused=True)
        self.n_updates = 0

    @torch.no_grad()
    def act(self, obs: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Deterministic residual (N, Da) for numpy inputs."""
        o = torch.as_tensor(obs, device=self.device)
        b = torch.as_tensor(base, device=self.device)
        return self.actor(o, b).cpu().numpy()

    def td_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """y = R_n + discount_n * min over `num_q_target` random target heads of Q'(s_n, a'_n)  -> (B,)."""
        cfg = self.cfg
        with torch.no_grad():
            next_res = self.actor_target(batch["next_obs"], batch["next_base"])
            noise = (torch.randn_like(next_res) * cfg.target_noise_std).clamp(-cfg.target_noise_clip,
                                                                              cfg.target_noise_clip)
            noise = noise * self.actor_target.mask
            next_action = (batch["next_base"] + next_res + noise).clamp(-1.0, 1.0)
            q_next = self.critic_target(batch["next_obs"], batch["next_base"], next_action)  # (H, B)
            heads = torch.randperm(cfg.num_q, device=self.device)[: cfg.num_q_target]
            q_next = q_next[heads].min(dim=0).values
            return batch["reward"] + batch["discount"] * q_next

    def update_critic(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        y = self.td_target(batch)
        q = self.critic(batch["obs"], batch["base"], batch["action"])  # (H, B)
        loss = F.mse_loss(q, y.unsqueeze(0).expand_as(q), reduction="none").mean(dim=1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), self.cfg.grad_clip)
        self.critic_opt.step()
        self._soft_update(self.critic, self.critic_target)
        self.n_updates += 1
        return {"losses/critic": loss.item() / self.cfg.num_q, "losses/q_mean": q.mean().item()}

    def update_actor(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        residual = self.actor(batch["obs"], batch["base"])
        action = (batch["base"] + residual).clamp(-1.0, 1.0)
        self.critic.requires_grad_(False)  # gradients flow through Q to the action only (~15% faster)
        try:
            q_heads = self.critic(batch["obs"], batch["base"], action)  # (H, B)
        finally:
            self.critic.requires_grad_(True)
        q = q_heads.mean(dim=0) if self.cfg.actor_q == "mean" else q_heads.min(dim=0).values
        loss = -q.mean() + self.cfg.residual_penalty * (residual / self.cfg.action_scale).pow(2).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.actor.parameters(), self.cfg.grad_clip)
        self.actor_opt.step()
        self._soft_update(self.actor, self.actor_target)
        return {"losses/actor": loss.item(), "charts/residual_abs": residual.abs().mean().item()}

    def _soft_update(self, net: torch.nn.Module, target: torch.nn.Module) -> None:
        with torch.no_grad():
            for p, tp in zip(net.parameters(), target.parameters()):
                tp.lerp_(p, self.cfg.tau)

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).state_dict() for k in
                ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt")} | {
                "n_updates": self.n_updates}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for k in ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt"):
            getattr(self, k).load_state_dict(sd[k])
        self.n_updates = int(sd["n_updates"])


def residual_mask(cfg: ResidualTD3Config, envs: ResidualVecEnv) -> np.ndarray:
    """(Da,) 0/1: the action dims the residual may change (demo-used dims, minus `frozen_action_dims`)."""
    mask = envs.residual_mask.copy() if cfg.mask_unused_dims else np.ones(envs.act_dim, np.float32)
    for d in cfg.frozen_action_dims:
        if not 0 <= d < envs.act_dim:
            raise ValueError(f"frozen_action_dims: {d} is not an action dim (0..{envs.act_dim - 1})")
        mask[d] = 0.0
    return mask


# ==================================================================================== demos
def relabel_demos(dataset: Any, base: Any, task_env: ResidualVecEnv, cfg: ResidualTD3Config) -> ReplayBuffer:
    """Demo transitions in the learner's view: base actions recomputed by running the frozen base
    open loop over each demo's observations; actions = the demo's own actions, normalised."""
    scaler: ActionScaler = task_env.scaler
    normalizer: StateNormalizer = task_env.normalizer
    runner = BaseRunner(base, 1, cfg.n_action_steps or None, cfg.seed) if base is not None else None
    buf = ReplayBuffer(max(1, dataset.num_frames), task_env.obs_dim, task_env.act_dim)
    for ep in range(dataset.num_episodes):
        data = dataset.episode(ep)
        n = len(data[ACTION])
        obs = normalizer(np.asarray(data[STATE], np.float32))
        raw = [{k: data[k][t] for k in data if k.startswith("observation.")} for t in range(n)]
        if runner is not None:
            runner.reset(0)
            base_act = scaler.normalize(np.concatenate([runner.actions([r], [0]) for r in raw]))
        else:
            base_act = np.zeros((n, task_env.act_dim), np.float32)
        act = scaler.normalize(np.asarray(data[ACTION], np.float32))
        reward = np.asarray(data.get("next.reward", np.zeros(n)), np.float32)
        done = np.asarray(data.get("next.done", np.zeros(n, bool)), bool)
        success_end = bool(reward[-1] > 0)
        acc = NStepAccumulator(cfg.n_step, cfg.gamma)
        for t in range(n):
            last = t == n - 1
            nxt = min(t + 1, n - 1)
            step = Step(obs[t], base_act[t], act[t], float(reward[t]), obs[nxt], base_act[nxt],
                        terminated=bool(last and success_end) or bool(done[t] and reward[t] > 0),
                        truncated=last and not success_end)
            for tr in acc.push(step):
                buf.add(tr)
            if step.terminated:
                break
    return buf


# ==================================================================================== training loop
def train(cfg: ResidualTD3Config, run_dir: str | Path, base: Any, dataset: Any | None,
          resume: bool = False) -> dict[str, Any]:
    """Train the residual; returns the summary dict (also written to `run_dir/report.json`)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    set_seed(cfg.seed)
    device = pick_device(cfg.device)
    save_config(cfg, run_dir / "config.yaml")
    envs = ResidualVecEnv(cfg.task, base, cfg.n_envs, cfg.seed, n_action_steps=cfg.n_action_steps or None)
    agent = ResidualTD3Agent(cfg, envs.obs_dim, envs.act_dim, device)
    mask = residual_mask(cfg, envs)
    for net in (agent.actor, agent.actor_target):
        net.mask.copy_(torch.as_tensor(mask))
    rng = np.random.default_rng(cfg.seed)
    online = ReplayBuffer(cfg.buffer_size, envs.obs_dim, envs.act_dim)
    demo = relabel_demos(dataset, base, envs, cfg) if dataset is not None else None
    logger = Logger(run_dir)
    ckpt_dir = run_dir / "checkpoint"
    state = {"env_steps": 0, "episodes": 0, "updates": 0, "dropped_steps": 0, "evals": []}
    if resume:
        state, online = load_checkpoint(ckpt_dir, agent, cfg, rng)
    residual_fn = agent.act
    eval_kwargs: dict[str, Any] = {"stats": envs.normalizer_stats, "n_action_steps": cfg.n_action_steps or None}

    def run_eval(n: int, with_residual: bool = True) -> EvalResult:
        return evaluate(cfg.task, base, n, seed=cfg.eval_seed, residual=residual_fn if with_residual else None,
                        **eval_kwargs)

    if not state["evals"]:
        base_eval = run_eval(cfg.eval_episodes, with_residual=False)
        state["evals"].append({"env_steps": 0, "success_rate": base_eval.success_rate})
        logger.log(0, {"eval/success_rate": base_eval.success_rate})
        print(base_eval.summary("base (step 0)"), flush=True)

    accs = [NStepAccumulator(cfg.n_step, cfg.gamma) for _ in range(cfg.n_envs)]
    obs, base_act = envs.reset()
    recent: list[bool] = []
    progress = ProgressLine(cfg.total_env_steps, "residual-td3")
    t_start, steps_at_start, updates_at_start = time.monotonic(), state["env_steps"], agent.n_updates
    next_eval = (state["env_steps"] // cfg.eval_every + 1) * cfg.eval_every
    next_ckpt = (state["env_steps"] // cfg.checkpoint_every + 1) * cfg.checkpoint_every
    metrics: dict[str, float] = {}

    while state["env_steps"] < cfg.total_env_steps:
        # ---- act: base + (uniform warm-up noise | residual + Gaussian exploration)
        if state["env_steps"] < cfg.learning_starts:
            residual = rng.uniform(-cfg.warmup_noise, cfg.warmup_noise, size=base_act.shape).astype(np.float32) * mask
        else:
            noise = rng.normal(0, cfg.explore_std, base_act.shape).astype(np.float32) * mask
            residual = agent.act(obs, base_act) + noise
        action = np.clip(base_act + residual, -1.0, 1.0)
        res = envs.step(action)
        for i in range(cfg.n_envs):
            if not res.valid[i]:  # non-finite observation or reward: drop the step, close the episode's windows
                for tr in accs[i].cut():
                    online.add(tr)
                continue
            step = Step(obs[i], base_act[i], action[i], float(res.reward[i]), res.next_obs[i], res.next_base[i],
                        bool(res.terminated[i]), bool(res.truncated[i]))
            for tr in accs[i].push(step):
                online.add(tr)
        obs, base_act = res.obs, res.base
        state["env_steps"] += cfg.n_envs
        state["dropped_steps"] = state.get("dropped_steps", 0) + int((~res.valid).sum())
        state["episodes"] += len(res.episode_successes)
        recent = (recent + res.episode_successes)[-50:]

        # ---- learn: UTD critic updates, then actor updates once the critic has warmed up
        if state["env_steps"] >= cfg.learning_starts and len(online) + (len(demo) if demo else 0) >= cfg.batch_size:
            for _ in range(cfg.utd * cfg.n_envs):
                batch = sample_mixed(online, demo, cfg.batch_size, cfg.demo_fraction, rng, device)
                metrics.update(agent.update_critic(batch))
            if agent.n_updates >= cfg.critic_warmup_updates:
                for _ in range(cfg.actor_updates_per_step * cfg.n_envs):
                    batch = sample_mixed(online, demo, cfg.batch_size, cfg.demo_fraction, rng, device)
                    metrics.update(agent.update_actor(batch))

        # ---- log, evaluate, checkpoint
        elapsed = max(1e-6, time.monotonic() - t_start)
        train_success = float(np.mean(recent)) if recent else 0.0
        if state["env_steps"] % 500 < cfg.n_envs:
            logger.log(state["env_steps"], {**metrics, "charts/train_success": train_success,
                                            "charts/episodes": state["episodes"],
                                            "charts/dropped_steps": state.get("dropped_steps", 0)})
        last_eval = state["evals"][-1]["success_rate"]
        progress.update(state["env_steps"], {
            "episodes": state["episodes"],
            "train_success": train_success,
            "eval_success": last_eval,
            "steps/s": (state["env_steps"] - steps_at_start) / elapsed,
            "updates/s": (agent.n_updates - updates_at_start) / elapsed,
            **({"dropped": state["dropped_steps"]} if state.get("dropped_steps") else {}),
        })
        if state["env_steps"] >= next_eval:
            next_eval += cfg.eval_every
            result = run_eval(cfg.eval_episodes)
            state["evals"].append({"env_steps": state["env_steps"], "success_rate": result.success_rate})
            logger.log(state["env_steps"], {"eval/success_rate": result.success_rate,
                                            "eval/mean_length": result.mean_length})
            progress.update(state["env_steps"], {"eval_success": result.success_rate}, force=True)
        if state["env_steps"] >= next_ckpt:
            next_ckpt += cfg.checkpoint_every
            save_checkpoint(ckpt_dir, agent, online, state, rng)
    progress.close()
    envs.close()
    state["updates"] = agent.n_updates
    state["wall_clock_s"] = state.get("wall_clock_s", 0.0) + time.monotonic() - t_start
    save_checkpoint(ckpt_dir, agent, online, state, rng)
    torch.save({"obs_dim": envs.obs_dim, "act_dim": envs.act_dim, "actor": agent.actor.state_dict()},
               run_dir / "residual_actor.pt")
    logger.close()
    return state


# ==================================================================================== checkpoints
def save_checkpoint(ckpt_dir: Path, agent: ResidualTD3Agent, online: ReplayBuffer, state: dict,
                    rng: np.random.Generator) -> None:
    """Resumable checkpoint; each file lands by atomic rename, `state.json` last (it commits the set)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / "agent.pt.tmp"
    torch.save(agent.state_dict(), tmp)
    os.replace(tmp, ckpt_dir / "agent.pt")
    online.save(ckpt_dir / "replay.npz")
    payload = dict(state, rng=rng.bit_generator.state, torch_rng=torch.get_rng_state().tolist())
    tmp = ckpt_dir / "state.json.tmp"
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, ckpt_dir / "state.json")


def load_checkpoint(ckpt_dir: Path, agent: ResidualTD3Agent, cfg: ResidualTD3Config,
                    rng: np.random.Generator) -> tuple[dict, ReplayBuffer]:
    if not (ckpt_dir / "state.json").is_file():
        raise FileNotFoundError(f"no checkpoint to resume in {ckpt_dir} (state.json missing)")
    state = json.loads((ckpt_dir / "state.json").read_text())
    agent.load_state_dict(torch.load(ckpt_dir / "agent.pt", map_location=agent.device, weights_only=False))
    online = ReplayBuffer.load(ckpt_dir / "replay.npz", cfg.buffer_size)
    rng.bit_generator.state = state.pop("rng")
    torch.set_rng_state(torch.tensor(state.pop("torch_rng"), dtype=torch.uint8))
    return state, online


def load_residual_fn(run_dir: str | Path, device: str = "cpu"):
    """The trained residual of a run as `fn(obs (N, Do), base (N, Da)) -> residual (N, Da)` (numpy)."""
    from robo.config import load_config

    run_dir = Path(run_dir)
    cfg = load_config(ResidualTD3Config, run_dir / "config.yaml")
    saved = torch.load(run_dir / "residual_actor.pt", map_location=device, weights_only=True)
    actor = ResidualActor(saved["obs_dim"], saved["act_dim"], cfg.actor_hidden, cfg.n_layers, cfg.action_scale)
    actor.load_state_dict(saved["actor"])
    actor.eval()

    @torch.no_grad()
    def fn(obs: np.ndarray, base: np.ndarray) -> np.ndarray:
        return actor(torch.as_tensor(obs), torch.as_tensor(base)).numpy()

    return fn

