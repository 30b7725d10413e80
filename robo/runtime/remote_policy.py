"""A policy that runs on a `PolicyServer`: same `predict_chunk` contract, over the network.

    policy = RemotePolicy("tcp://gpu-box:5555", jpeg_quality=90)        # edge side
    with ChunkExecutor(policy, policy.n_action_steps, mode="async", control_hz=10) as ex:
        action = ex.act(obs)                                             # per control step

`predict_chunk(obs {key: (B, To, ...)}) -> (B, T', Da)` numpy, blocking; call it from the executor's
worker thread (async mode) so the control loop never waits on the network. Round-trip times are
kept in `rtts_s`. `n_obs_steps` / `n_action_steps` (also as `config.*`, like a local policy's),
`stats` and `task` come from the server's heartbeat info, so `robo eval --policy tcp://gpu-box:5555
[--residual run]` evaluates a served base (plus a residual run on the edge) as it would a checkpoint.
"""

from __future__ import annotations

import collections
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from robo.runtime.policy_server import NOISE
from robo.transport import CurveConfig, RpcClient

__all__ = ["RemotePolicy"]


class RemotePolicy:
    """Client side of `PolicyServer`. Not thread-safe: one caller thread (the executor's worker).

    Args:
        endpoint: server address, e.g. "tcp://gpu-box:5555".
        curve: CURVE client keys when the server authenticates clients.
        jpeg_quality: JPEG-encode colour images (`observation.images.*`, never depth) edge->cloud.
        timeout_s, retries: per-request reply timeout and resends (reconnecting in between).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        name: str | None = None,
        curve: CurveConfig | None = None,
        jpeg_quality: int | None = None,
        timeout_s: float = 5.0,
        retries: int = 2,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {jpeg_quality}")
        self.client = RpcClient(endpoint, name=name, curve=curve, timeout_s=timeout_s, retries=retries)
        self.jpeg_quality = jpeg_quality
        self.rtts_s: collections.deque[float] = collections.deque(maxlen=1000)
        self.server_s: collections.deque[float] = collections.deque(maxlen=1000)
        self.policy_version: str | None = None
        self.n_requests = 0
        try:
            _, self.info = self.client.ping(timeout_s=connect_timeout_s / 3, retries=2)
        except Exception:
            self.client.close()
            raise

    @property
    def n_obs_steps(self) -> int:
        return int(self.info.get("n_obs_steps", 1))

    @property
    def n_action_steps(self) -> int:
        return int(self.info.get("n_action_steps", 8))

    @property
    def config(self) -> SimpleNamespace:
        """The chunking a local policy's config carries (what `ChunkExecutor` and `evaluate` read), and
        the chunk horizon when the server sent it (then the executor sends each env's initial noise)."""
        cfg = SimpleNamespace(n_obs_steps=self.n_obs_steps, n_action_steps=self.n_action_steps)
        if isinstance(self.info.get("horizon"), int) and isinstance(self.info.get("action_dim"), int):
            cfg.horizon = int(self.info["horizon"])
        return cfg

    @property
    def action_dim(self) -> int | None:
        value = self.info.get("action_dim")
        return int(value) if isinstance(value, int) else None

    @property
    def stats(self) -> dict[str, Any] | None:
        """The served policy's state/action statistics (mean, std, min, max), if the server sent them."""
        stats = self.info.get("stats")
        return stats if isinstance(stats, dict) and stats else None

    @property
    def task(self) -> str | None:
        """The task recorded in the served checkpoint, if the server knows it."""
        task = self.info.get("task")
        return task if isinstance(task, str) else None

    def predict_chunk(self, obs: dict[str, Any], t_capture: float | None = None, generator: Any = None,
                      noise: Any = None) -> np.ndarray:
        """Send an observation window (numpy arrays or CPU tensors), get (B, T', Da) raw-unit actions.

        `noise` (B, T, Da): each row's initial sampling noise, sent along (a served robo policy samples
        from it, so a served episode matches the local one). `generator` is accepted for drop-in use
        where a local policy is expected and ignored: without `noise` the server samples with its own
        (`robo serve --seed`).
        """
        arrays = {k: v for k, v in obs.items() if hasattr(v, "shape")}
        if noise is not None:
            arrays[NOISE] = np.ascontiguousarray(np.asarray(noise), np.float32)
        t0 = time.perf_counter()
        msg = self.client.call("act_request", arrays, t_capture=t_capture, jpeg_quality=self.jpeg_quality)
        self.rtts_s.append(time.perf_counter() - t0)
        self.n_requests += 1
        self.server_s.append(float(msg.meta.get("server_s", 0.0)))
        self.policy_version = str(msg.meta.get("policy_version"))
        if "action" not in msg.arrays:
            raise ValueError("policy server reply has no 'action' array")
        return np.array(msg.arrays["action"], dtype=np.float32)  # own the memory (the frame is read-only)

    def rtt_ms(self, q: float = 50.0) -> float:
        return float(np.percentile(self.rtts_s, q) * 1e3) if self.rtts_s else float("nan")

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RemotePolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
