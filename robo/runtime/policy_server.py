"""Serve a chunk policy to edge clients over ZMQ, batching concurrent requests.

    server = PolicyServer(policy, "tcp://*:5555", max_batch=8, batch_window_s=0.002)
    server.serve_forever()            # or server.start() / server.stop() for a background thread

Protocol (see `robo.transport`): a client sends "act_request" with arrays {key: (B, To, ...)} (images
may arrive JPEG-encoded; optionally "noise" (B, T, Da), each row's initial sampling noise) and gets
"act" with {"action": (B, T', Da) float32} and meta
{"policy_version", "server_s"}; a "heartbeat" is answered with `info` (n_obs_steps, n_action_steps,
action_dim, the state/action statistics, policy_version, plus the caller's `info`, e.g. the task), so
a `RemotePolicy` learns how to drive the executor and how to normalise states for an edge residual.

Batching: after the first request arrives the server waits up to `batch_window_s` for more (at most
`max_batch` requests), groups those whose arrays have the same keys, trailing shapes and dtypes, and
runs one `predict_chunk` per group. A policy exception answers that group with an "error" (code
"policy_error") and the server keeps serving. `delay_s` injects latency before each reply (tests and
latency studies).

Bad input never reaches the policy: a policy with a spec (every robo checkpoint) declares the arrays
it reads, (B, To, *shape) with their dtypes, and a request whose arrays differ is refused before any
of them is decoded (JPEG images included; arrays the policy does not read are skipped undecoded); a
request with a NaN or inf value is answered with an "error" (code "bad_request"), and a chunk with a
NaN or inf action is never sent (code "policy_error").
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from robo.runtime.chunk_executor import initial_noise_shape
from robo.transport import ArraySchema, CurveConfig, DecodeLimits, Request, RpcServer

log = logging.getLogger(__name__)

__all__ = ["PolicyServer", "batched_predict_fn", "policy_info", "request_limits"]


NOISE = "noise"
"""Request array: (B, T, Da) initial noise the client drew for each row (a robo chunk policy samples
from it instead of the server's generator, so a served episode is the local one)."""


def batched_predict_fn(policy: Any, seed: int | None = None) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """`fn(obs {key: (B, To, ...)} numpy) -> (B, T', Da) float32 numpy` for a torch or numpy policy."""
    if hasattr(policy, "parameters") and hasattr(policy, "state_dict"):
        import torch

        generator = torch.Generator().manual_seed(seed) if seed is not None else None

        def call_torch(obs: dict[str, np.ndarray]) -> np.ndarray:
            try:
                device = next(policy.parameters()).device
            except StopIteration:
                device = torch.device("cpu")
            obs = dict(obs)
            noise = obs.pop(NOISE, None)  # the client's initial noise (one generator per env on the edge)
            batch = {k: torch.from_numpy(v).to(device) for k, v in obs.items()}
            kwargs: dict[str, Any] = {"generator": generator} if generator is not None else {}
            if noise is not None:
                kwargs["noise"] = torch.from_numpy(np.ascontiguousarray(noise, np.float32))
            with torch.no_grad():
                out = policy.predict_chunk(batch, **kwargs)
            return out.detach().to("cpu").float().numpy()

        return call_torch
    if hasattr(policy, "predict_chunk"):
        return lambda obs: np.asarray(policy.predict_chunk(obs), dtype=np.float32)
    return lambda obs: np.asarray(policy(obs), dtype=np.float32)


def policy_info(policy: Any) -> dict[str, Any]:
    """What a client needs to drive a `ChunkExecutor`: msgpack-native values read from the policy."""
    cfg = getattr(policy, "config", None) or getattr(policy, "cfg", None)
    info: dict[str, Any] = {}
    for key in ("n_obs_steps", "n_action_steps", "horizon"):
        value = getattr(cfg, key, None) if cfg is not None else None
        value = getattr(policy, key, value)
        if isinstance(value, int):
            info[key] = value
    action_dim = getattr(policy, "action_dim", None)
    if isinstance(action_dim, int):
        info["action_dim"] = action_dim
    name = getattr(policy, "name", None)
    if isinstance(name, str):
        info["policy"] = name
    stats = _small_stats(getattr(policy, "stats", None))
    if stats:
        info["stats"] = stats
    return info


def request_limits(policy: Any, base: DecodeLimits | None = None) -> DecodeLimits:
    """The `DecodeLimits` of an "act_request" to `policy`: the observation arrays it reads, shaped
    (B, To, *feature shape) with the spec's dtypes, when it has a `spec` and `n_obs_steps` (on its
    config, as every robo checkpoint, or on itself); else `base` (the transport's default size limits)."""
    base = base or DecodeLimits()
    spec = getattr(policy, "spec", None)
    n_obs = getattr(policy, "n_obs_steps", getattr(getattr(policy, "config", None), "n_obs_steps", None))
    features = getattr(spec, "features", None)
    if not isinstance(n_obs, int) or not isinstance(features, Mapping):
        return base
    arrays = {
        key: ArraySchema(str(np.dtype(feat.dtype)), (None, n_obs, *(int(d) for d in feat.shape)))
        for key, feat in features.items()
        if key.startswith("observation.")
    }
    noise_shape = initial_noise_shape(policy)
    if noise_shape is not None:
        arrays[NOISE] = ArraySchema("float32", (None, *noise_shape))
    return DecodeLimits(max_bytes=base.max_bytes, max_image_pixels=base.max_image_pixels, arrays=arrays)


def _small_stats(stats: Any) -> dict[str, dict[str, list[float]]]:
    """The state and action statistics of a policy (a few floats each), msgpack-native: what an edge
    client needs to normalise states for a residual it runs on top of the served base."""
    out: dict[str, dict[str, list[float]]] = {}
    if not isinstance(stats, Mapping):
        return out
    for key in ("observation.state", "action"):
        entry = stats.get(key)
        if not isinstance(entry, Mapping):
            continue
        try:
            out[key] = {k: [float(x) for x in np.asarray(entry[k]).reshape(-1)]
                        for k in ("mean", "std", "min", "max") if k in entry}
        except (TypeError, ValueError):
            continue
    return out


class PolicyServer:
    """Answers "act_request" messages with action chunks; see the module docstring."""

    def __init__(
        self,
        policy: Any,
        bind: str = "tcp://*:5555",
        *,
        name: str = "policy-server",
        curve: CurveConfig | None = None,
        max_batch: int = 8,
        batch_window_s: float = 0.002,
        delay_s: float = 0.0,
        policy_version: str = "0",
        seed: int | None = None,
        peer_timeout_s: float = 10.0,
        info: Mapping[str, Any] | None = None,
        limits: DecodeLimits | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if batch_window_s < 0 or delay_s < 0:
            raise ValueError(f"batch_window_s and delay_s must be >= 0, got {batch_window_s}, {delay_s}")
        self.predict = batched_predict_fn(policy, seed)
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.delay_s = delay_s
        self.policy_version = policy_version
        info = {**policy_info(policy), **(info or {}), "policy_version": policy_version}  # heartbeat replies
        self.server = RpcServer(
            bind, name=name, curve=curve, info=info, peer_timeout_s=peer_timeout_s,
            limits=limits if limits is not None else request_limits(policy),
        )
        self.endpoint = self.server.endpoint
        self.batch_sizes: Counter[int] = Counter()
        self.n_served = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------- serving
    def serve_once(self, timeout_s: float | None = 0.1) -> int:
        """Wait up to `timeout_s` for requests, answer one batch; returns the number answered."""
        first = self.server.recv(timeout_s)
        if first is None:
            return 0
        reqs = [first]
        deadline = time.monotonic() + self.batch_window_s
        while len(reqs) < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            nxt = self.server.recv(remaining)
            if nxt is None:
                break
            reqs.append(nxt)
        groups: dict[tuple, list[Request]] = {}
        for req in reqs:
            if req.msg.kind != "act_request":
                self.server.error(req, "unsupported", f"policy server does not handle '{req.msg.kind}'")
                continue
            problem = self._check(req.msg.arrays)
            if problem:
                self.server.error(req, "bad_request", problem)
                continue
            key = tuple(sorted((k, v.shape[1:], v.dtype.str) for k, v in req.msg.arrays.items()))
            groups.setdefault(key, []).append(req)
        for group in groups.values():
            self._answer(group)
        return len(reqs)

    @staticmethod
    def _check(arrays: Mapping[str, np.ndarray]) -> str:
        if not arrays:
            return "act_request carries no observation arrays"
        sizes = {v.shape[0] if v.ndim else -1 for v in arrays.values()}
        if len(sizes) != 1 or -1 in sizes or 0 in sizes:
            shapes = {k: v.shape for k, v in arrays.items()}
            return f"observation arrays must share a batch dim B >= 1, got shapes {shapes}"
        for key, value in arrays.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                return f"observation '{key}' contains NaN or inf"
        return ""

    def _answer(self, group: list[Request]) -> None:
        t0 = time.perf_counter()
        keys = list(group[0].msg.arrays)
        batch = {k: np.concatenate([r.msg.arrays[k] for r in group]) for k in keys}
        try:
            chunk = self.predict(batch)
            if chunk.ndim != 3 or chunk.shape[0] != batch[keys[0]].shape[0]:
                raise ValueError(f"policy returned shape {chunk.shape}, expected (B, T', Da)")
            if not np.isfinite(chunk).all():
                raise ValueError("policy returned NaN or inf actions")
        except Exception as e:  # the server must survive any policy failure
            log.exception("policy failed on a batch of %d request(s)", len(group))
            for req in group:
                self.server.error(req, "policy_error", f"{type(e).__name__}: {e}")
            return
        if self.delay_s:
            time.sleep(self.delay_s)
        server_s = time.perf_counter() - t0
        self.batch_sizes[len(group)] += 1
        i = 0
        for req in group:
            b = req.msg.arrays[keys[0]].shape[0]
            meta = {"policy_version": self.policy_version, "server_s": server_s, "batch": len(group)}
            self.server.reply(
                req, "act", {"action": np.ascontiguousarray(chunk[i : i + b])}, meta, t_capture=req.msg.t_capture
            )
            i += b
            self.n_served += 1

    def serve_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        log.info(
            "serving on %s (max_batch=%d, window=%.1f ms)", self.endpoint, self.max_batch, self.batch_window_s * 1e3
        )
        while not stop.is_set():
            try:
                self.serve_once(0.1)
            except Exception:  # never die on one bad batch
                log.exception("policy server: unexpected error (continuing)")

    def start(self) -> PolicyServer:
        """Serve from a background thread (tests, notebooks)."""
        self._thread = threading.Thread(target=self.serve_forever, name="policy-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.server.close()

    def __enter__(self) -> PolicyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
