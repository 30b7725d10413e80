"""`--algo residual`: the off-policy residual learner (robo.learn.residual_td3) split into processes.

The same agent, replay and demo relabelling as the embedded `robo train --residual`; only the loop is
cut in two:

- actor process: `ResidualVecEnv` (task + frozen base) with one env, a CPU copy of the residual
  actor, warm-up noise until the learner says `learning_starts` is reached, then residual +
  Gaussian exploration; n-step transitions (`robo.learn.replay.FIELDS`) per episode.
- learner process: `ResidualTD3Agent`, online replay (+ demo buffer relabelled with the base,
  50/50 sampling), `cfg.utd` critic updates and `cfg.actor_updates_per_step` actor updates per
  received transition after the warm-ups; publishes the residual actor's weights.

`base: none` in the config runs without a base (zero base action), which keeps smoke tests cheap.
The learner resolves the base first (building and caching the embedded default if needed);
`launch_local` starts actors only once the learner is up, so they find it cached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["make_learner", "make_actor", "ResidualLearner", "ResidualActorWorker"]

_PREFIX = "actor."


def _load(config_path: str | None) -> Any:
    from robo.config import load_config
    from robo.learn.residual_td3 import ResidualTD3Config

    return load_config(ResidualTD3Config, config_path)


def _base(cfg: Any, with_demos: bool) -> tuple[Any, Any]:
    if cfg.base.lower() == "none":
        return None, None
    from robo.learn.pipeline import resolve_base

    base, dataset, _, _ = resolve_base(cfg.task, cfg.base, cfg.demos, cfg.default_base)
    return base, (dataset if with_demos else None)


class ResidualLearner:
    """`LearnerAlgo` around `ResidualTD3Agent` (see robo.runtime.algo)."""

    def __init__(self, cfg: Any, run_dir: Path, seed: int) -> None:
        from robo.learn.common import pick_device, set_seed
        from robo.learn.replay import ReplayBuffer
        from robo.learn.residual_env import ResidualVecEnv
        from robo.learn.residual_td3 import ResidualTD3Agent, relabel_demos, residual_mask

        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        set_seed(seed)
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device = pick_device(cfg.device)
        base, dataset = _base(cfg, with_demos=True)
        env = ResidualVecEnv(cfg.task, base, 1, seed, n_action_steps=cfg.n_action_steps or None)
        self.obs_dim, self.act_dim = env.obs_dim, env.act_dim
        self.agent = ResidualTD3Agent(cfg, self.obs_dim, self.act_dim, self.device)
        mask = residual_mask(cfg, env)  # travels to the actors with the weights (a buffer of the actor)
        for net in (self.agent.actor, self.agent.actor_target):
            net.mask.copy_(torch.as_tensor(mask))
        self.online = ReplayBuffer(cfg.buffer_size, self.obs_dim, self.act_dim)
        self.demo = relabel_demos(dataset, base, env, cfg) if dataset is not None else None
        env.close()
        self.rng = np.random.default_rng(seed)
        self.env_steps = 0
        self.n_calls = 0
        self.metrics: dict[str, float] = {}

    def add(self, rows: dict[str, np.ndarray]) -> None:
        from robo.learn.replay import FIELDS

        n = len(rows["obs"])
        for i in range(n):
            self.online.add({k: rows[k][i] for k in FIELDS})
        self.env_steps += n

    def ready(self) -> bool:
        n_data = len(self.online) + (len(self.demo) if self.demo is not None else 0)
        return self.env_steps >= self.cfg.learning_starts and n_data >= self.cfg.batch_size

    def update(self) -> dict[str, float]:
        """One critic update; after every `utd` of them, the actor updates (once the critic is warm)."""
        from robo.learn.replay import sample_mixed

        cfg = self.cfg
        batch = sample_mixed(self.online, self.demo, cfg.batch_size, cfg.demo_fraction, self.rng, self.device)
        self.metrics.update(self.agent.update_critic(batch))
        self.n_calls += 1
        if self.n_calls % cfg.utd == 0 and self.agent.n_updates >= cfg.critic_warmup_updates:
            for _ in range(cfg.actor_updates_per_step):
                batch = sample_mixed(self.online, self.demo, cfg.batch_size, cfg.demo_fraction, self.rng, self.device)
                self.metrics.update(self.agent.update_actor(batch))
        return dict(self.metrics)

    def actor_state(self) -> dict[str, Any]:
        state = {_PREFIX + k: v.detach().cpu() for k, v in self.agent.actor.state_dict().items()}
        state["learning_started"] = np.array(self.env_steps >= self.cfg.learning_starts)
        return state

    def state_dict(self) -> dict[str, Any]:
        return {"agent": self.agent.state_dict(), "n_calls": self.n_calls}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.agent.load_state_dict(sd["agent"])
        self.n_calls = int(sd["n_calls"])

    def finish(self) -> None:
        """Write `residual_actor.pt` as the embedded trainer does (for `load_residual_fn`, `robo eval`)."""
        torch.save(
            {"obs_dim": self.obs_dim, "act_dim": self.act_dim, "actor": self.agent.actor.state_dict()},
            self.run_dir / "residual_actor.pt",
        )


class ResidualActorWorker:
    """`ActorAlgo`: one env seen through the frozen base, acting with the latest residual weights."""

    def __init__(self, cfg: Any, actor_id: int, seed: int) -> None:
        from robo.learn.replay import NStepAccumulator
        from robo.learn.residual_env import ResidualVecEnv
        from robo.learn.residual_td3 import residual_mask
        from robo.policies.residual.model import ResidualActor

        torch.set_num_threads(1)
        self.cfg = cfg
        env_seed = seed + 7919 * (actor_id + 1)  # distinct episodes per actor, never the eval seeds' range
        base, _ = _base(cfg, with_demos=False)
        self.env = ResidualVecEnv(cfg.task, base, 1, env_seed, n_action_steps=cfg.n_action_steps or None)
        self.actor = ResidualActor(self.env.obs_dim, self.env.act_dim, cfg.actor_hidden, cfg.n_layers, cfg.action_scale)
        self.actor.eval()
        self.mask = residual_mask(cfg, self.env)
        self.acc = NStepAccumulator(cfg.n_step, cfg.gamma)
        self.rng = np.random.default_rng(env_seed)
        self.learning_started = False
        self.obs, self.base = self.env.reset()

    def load_actor_state(self, arrays: dict[str, np.ndarray]) -> None:
        sd = {k[len(_PREFIX) :]: torch.as_tensor(np.array(v)) for k, v in arrays.items() if k.startswith(_PREFIX)}
        self.actor.load_state_dict(sd)
        self.learning_started = bool(arrays["learning_started"])

    @torch.no_grad()
    def run_episode(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from robo.learn.replay import FIELDS, Step

        cfg, rows = self.cfg, []
        ret, dropped = 0.0, 0
        while True:
            shape = self.base.shape
            if self.learning_started:
                residual = self.actor(torch.as_tensor(self.obs), torch.as_tensor(self.base)).numpy()
                residual = residual + self.rng.normal(0, cfg.explore_std, shape).astype(np.float32) * self.mask
            else:
                residual = self.rng.uniform(-cfg.warmup_noise, cfg.warmup_noise, shape).astype(np.float32) * self.mask
            action = np.clip(self.base + residual, -1.0, 1.0)
            res = self.env.step(action)
            if not res.valid[0]:  # non-finite observation or reward: drop the step and end the episode here
                rows.extend(self.acc.cut())
                self.obs, self.base = res.obs, res.base  # the env has been reset
                dropped += 1
                if rows:
                    success, length = False, len(rows)
                    break
                continue
            ret += float(res.reward[0])
            step = Step(
                self.obs[0],
                self.base[0],
                action[0],
                float(res.reward[0]),
                res.next_obs[0],
                res.next_base[0],
                bool(res.terminated[0]),
                bool(res.truncated[0]),
            )
            rows.extend(self.acc.push(step))
            self.obs, self.base = res.obs, res.base
            if res.episode_successes:
                success = bool(res.episode_successes[0])
                length = int(res.episode_lengths[0])
                break
        out = {k: np.stack([np.asarray(r[k], np.float32) for r in rows]) for k in FIELDS}
        return out, {"success": success, "return": ret, "length": length, "dropped_steps": dropped}


def make_learner(config_path: str | None, run_dir: Path, seed: int) -> ResidualLearner:
    cfg = _load(config_path)
    return ResidualLearner(cfg, run_dir, cfg.seed if seed is None else seed)


def make_actor(config_path: str | None, actor_id: int, seed: int) -> ResidualActorWorker:
    cfg = _load(config_path)
    return ResidualActorWorker(cfg, actor_id, cfg.seed if seed is None else seed)
