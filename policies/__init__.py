"""Action-chunk policies (`robo.policies`): registry, construction and checkpoint loading.

    policy = make_policy("diffusion" | "flow", cfg, spec, stats)   # stats: dataset meta/stats.json dict
    loss = policy.compute_loss(batch)                              # scalar
    chunk = policy.predict_chunk(obs, seed=0)                      # (B, T - To + 1, Da) raw units
    policy.save(dir); policy = load_policy(dir)

A policy is `policies/<name>/{config.py, model.py}`; adding one is one line in `POLICIES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robo.config import ConfigError, load_config
from robo.spec import Spec

from .common.checkpoint import CheckpointError, checkpoint_dir, checkpoint_task, read_checkpoint, read_train_info
from .common.config import ChunkPolicyConfig
from .common.ema import EMA
from .common.policy import ChunkPolicy
from .diffusion.config import DiffusionConfig
from .diffusion.model import DiffusionPolicy
from .flow.config import FlowConfig
from .flow.model import FlowPolicy

POLICIES: dict[str, type[ChunkPolicy]] = {
    "diffusion": DiffusionPolicy,
    "flow": FlowPolicy,
}
"""name -> policy class; each class has `.config_class`."""


def _policy_class(name: str) -> type[ChunkPolicy]:
    if name not in POLICIES:
        raise ValueError(f"policy name={name!r} is not one of {sorted(POLICIES)}")
    return POLICIES[name]


def make_config(
    name: str, path: str | Path | None = None, overrides: list[str] | None = None
) -> ChunkPolicyConfig:
    """The config dataclass of policy `name`: defaults < YAML at `path` < dotted overrides."""
    return load_config(_policy_class(name).config_class, path, overrides)


def make_policy(name: str, cfg: ChunkPolicyConfig | None, spec: Spec, stats: dict[str, Any]) -> ChunkPolicy:
    """Build policy `name` from its config (None = defaults), the dataset spec and stats."""
    cls = _policy_class(name)
    if cfg is None:
        cfg = cls.config_class()
    return cls(cfg, spec, stats)


def load_policy(directory: str | Path, map_location: str = "cpu") -> ChunkPolicy:
    """Rebuild a policy saved with `policy.save(directory)`; eval mode, on `map_location`.

    Raises CheckpointError (a ValueError) with a one-line message naming the missing/corrupt file.
    """
    name, cfg_path, state, stats, spec = read_checkpoint(directory)
    cls = _policy_class(name)
    try:
        cfg = load_config(cls.config_class, cfg_path)
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    policy = cls(cfg, spec, stats)
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as e:
        why = " ".join(str(e).strip().splitlines()[:2])
        wpath = Path(directory) / "model.safetensors"
        raise CheckpointError(f"{wpath}: weights do not match config.yaml ({why})") from None
    return policy.to(map_location).eval()


__all__ = [
    "POLICIES", "CheckpointError", "ChunkPolicy", "ChunkPolicyConfig", "DiffusionConfig", "DiffusionPolicy",
    "EMA", "FlowConfig", "FlowPolicy", "checkpoint_dir", "checkpoint_task", "load_policy", "make_config", "make_policy",
    "read_train_info",
]
