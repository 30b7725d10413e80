"""Execute action chunks one control step at a time, locally or against a slow (remote) policy.

A policy is pure: `predict_chunk(obs) -> (B, T', Da)` returns actions for the observation's step
onward. `ChunkExecutor` owns everything stateful around it: the observation history (To frames), the
action queue, the execution horizon (`n_action_steps`), and — in asynchronous mode — requesting the
next chunk ahead of time, measuring its latency, dropping the stale prefix and cross-fading the
overlap, so that motion has no seams. The same executor drives local policies and
`robo.runtime.remote_policy.RemotePolicy` (anything with `predict_chunk`).

Time is counted in control steps (one `act()` call = one step at `control_hz`). On a robot the loop
calls `act()` at its control rate, so steps are time; in sim, steps stay meaningful when the sim runs
faster than real time. Latency is also measured in seconds (`stats`).

Synchronous mode (`mode="sync"`, deterministic; used for evaluation in sim)::

    step     k   k+1 ... k+n-1 | k+n  ...
    predict  *                 | *            (* = blocking predict_chunk on obs at that step)
    execute  a0  a1  ... a(n-1)| a0' ...      (n = n_action_steps; the rest of the chunk is dropped)

Asynchronous mode (`mode="async"`): the next chunk is requested when `ahead` actions remain before the
execution horizon; the robot keeps executing the current chunk while the request is in flight::

    step       k0 ...... k = k0+n-ahead ......... k+d ................ k0+n .........
    old chunk  a0 ...... a(n-ahead) ............... a(n-ahead+d) ....... a(n) a(n+1) ...
                         |-- request(obs_k): latency d steps --|         (a(n)..: spare tail,
    new chunk                                       b0 .. b(d-1): stale   used if very late)
               (predicted for step k)               prefix, dropped
                                                    b(d) b(d+1) ... executed from step k+d,
                                                    the first m of them cross-faded:
    action at step k+d+i (i < m) = (1 - w_i) * old[k+d+i] + w_i * new[d+i],   w_i = (i+1) / (m+1)

with m = `blend_steps` (clipped to the old actions left). If the new chunk is so late that the old
chunk (tail included) runs out, `act()` blocks until it arrives (`n_starved` counts this) and raises
`TimeoutError` after `starve_timeout_s`. `ahead` is `request_ahead_steps`, or, when that is None,
chosen from the measured latency: ceil(p90 latency × control_hz) + 1, clipped to [1, n_action_steps].

`simulate_latency_steps=L` makes async mode deterministic for sim studies: the chunk is computed at
request time but only becomes visible L steps later.
"""

from __future__ import annotations

import collections
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["ChunkExecutor", "ChunkSource", "ExecutorStats", "as_chunk_fn"]


@runtime_checkable
class ChunkSource(Protocol):
    """Anything with the policy inference contract: obs {key: (B, To, ...)} -> (B, T', Da)."""

    def predict_chunk(self, obs: dict[str, Any]) -> Any: ...


ChunkFn = Callable[[dict[str, np.ndarray]], np.ndarray]


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch.Tensor without importing torch here
        return x.detach().to("cpu").float().numpy()
    return np.asarray(x)


def _accepts(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def as_chunk_fn(source: ChunkSource | ChunkFn, generator: Any = None) -> ChunkFn:
    """Wrap a policy (or a callable) as `fn(obs_window {key: (To, ...)}) -> (T', Da) float32`.

    A torch module gets batched tensors on its device under `torch.no_grad()` (and `generator=` when
    given and its `predict_chunk` accepts one, for reproducible sampling); anything else gets batched
    numpy arrays. A callable without `predict_chunk` is used as is and must return (T', Da) or
    (1, T', Da).
    """
    if not hasattr(source, "predict_chunk"):
        fn = source

        def call_fn(window: dict[str, np.ndarray]) -> np.ndarray:
            out = _to_numpy(fn(window))  # type: ignore[operator]
            return out[0] if out.ndim == 3 else out

        return call_fn

    policy = source
    is_torch = hasattr(policy, "parameters") and hasattr(policy, "state_dict")

    if is_torch:
        import torch

        use_generator = generator is not None and _accepts(policy.predict_chunk, "generator")

        def call_torch(window: dict[str, np.ndarray]) -> np.ndarray:
            try:
                device = next(policy.parameters()).device  # type: ignore[attr-defined]
            except StopIteration:
                device = torch.device("cpu")
            batch = {k: torch.from_numpy(np.ascontiguousarray(v)[None]).to(device) for k, v in window.items()}
            kwargs = {"generator": generator} if use_generator else {}
            with torch.no_grad():
                out = policy.predict_chunk(batch, **kwargs)
            return _to_numpy(out)[0].astype(np.float32, copy=False)

        return call_torch

    def call_numpy(window: dict[str, np.ndarray]) -> np.ndarray:
        out = _to_numpy(policy.predict_chunk({k: v[None] for k, v in window.items()}))
        return out[0].astype(np.float32, copy=False)

    return call_numpy


@dataclass
class ExecutorStats:
    """Counters since construction (not cleared by `reset()`); latencies in seconds."""

    n_steps: int = 0
    n_chunks: int = 0
    n_stale_dropped: int = 0  # actions dropped as stale prefixes, summed
    n_starved: int = 0  # times act() had to block for a late chunk
    n_blended: int = 0  # steps whose action is a cross-fade
    latencies_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=256))
    latency_steps: collections.deque = field(default_factory=lambda: collections.deque(maxlen=256))

    def latency_ms(self, q: float = 50.0) -> float:
        """Percentile `q` of the measured request latency in ms (nan before the first chunk)."""
        return float(np.percentile(self.latencies_s, q) * 1e3) if self.latencies_s else float("nan")


@dataclass
class _Pending:
    step: int  # step index of the observation the chunk was requested for
    t_sent: float
    future: Future | None = None  # real request
    result: np.ndarray | None = None  # simulated latency: computed already
    ready_step: int = 0
    generation: int = 0

    def ready(self, step: int) -> bool:
        if self.future is not None:
            return self.future.done()
        return step >= self.ready_step

    def get(self, timeout: float | None) -> np.ndarray:
        if self.future is not None:
            return self.future.result(timeout=timeout)
        assert self.result is not None
        return self.result


class ChunkExecutor:
    """Turn `predict_chunk` into one action per control step (see the module docstring).

    Args:
        chunk_source: a policy (`predict_chunk(obs {key: (B, To, ...)}) -> (B, T', Da)`, torch or
            numpy) or a callable `fn(obs_window {key: (To, ...)}) -> (T', Da)`.
        n_action_steps: execution horizon Ta: actions executed from each chunk before the next one
            (None: the policy's `config.n_action_steps`, or its `n_action_steps` attribute).
        mode: "sync" (predict when the queue runs out; deterministic) or "async".
        n_obs_steps: To, observation frames per request (None: the policy's `cfg.n_obs_steps` or 1).
            At episode start the history is padded by repeating the first observation.
        control_hz: control rate, used to turn measured latency into steps.
        request_ahead_steps: async: request when this many actions remain before the horizon
            (None: from measured latency, see module docstring).
        blend_steps: async: length of the cross-fade between the old and the new chunk.
        simulate_latency_steps: async: deterministic simulated latency instead of a worker thread.
        starve_timeout_s: async: how long `act()` waits for a late chunk before `TimeoutError`.
        seed: torch policies: seed of a generator passed as `predict_chunk(..., generator=)` (when
            accepted), making sync mode reproducible run to run.
    """

    def __init__(
        self,
        chunk_source: ChunkSource | ChunkFn,
        n_action_steps: int | None = None,
        *,
        mode: Literal["sync", "async"] = "sync",
        n_obs_steps: int | None = None,
        control_hz: float = 10.0,
        request_ahead_steps: int | None = None,
        blend_steps: int = 3,
        simulate_latency_steps: int | None = None,
        starve_timeout_s: float = 30.0,
        seed: int | None = None,
    ) -> None:
        cfg = getattr(chunk_source, "cfg", None) or getattr(chunk_source, "config", None)
        if n_action_steps is None:
            n_action_steps = getattr(cfg, "n_action_steps", None) or getattr(chunk_source, "n_action_steps", None)
            if not isinstance(n_action_steps, int):
                raise ValueError("n_action_steps not given and the chunk source does not define one")
        if n_action_steps < 1:
            raise ValueError(f"n_action_steps must be >= 1, got {n_action_steps}")
        if mode not in ("sync", "async"):
            raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
        if control_hz <= 0:
            raise ValueError(f"control_hz must be > 0, got {control_hz}")
        if blend_steps < 0:
            raise ValueError(f"blend_steps must be >= 0, got {blend_steps}")
        if request_ahead_steps is not None and not 0 <= request_ahead_steps <= n_action_steps:
            raise ValueError(f"request_ahead_steps must be in [0, {n_action_steps}], got {request_ahead_steps}")
        if simulate_latency_steps is not None and simulate_latency_steps < 0:
            raise ValueError(f"simulate_latency_steps must be >= 0, got {simulate_latency_steps}")
        if n_obs_steps is None:
            n_obs_steps = getattr(cfg, "n_obs_steps", None) or getattr(chunk_source, "n_obs_steps", 1)
            n_obs_steps = int(n_obs_steps or 1)
        if n_obs_steps < 1:
            raise ValueError(f"n_obs_steps must be >= 1, got {n_obs_steps}")
        self.seed = seed
        self._generator = None
        if seed is not None and hasattr(chunk_source, "parameters"):
            import torch

            self._generator = torch.Generator().manual_seed(int(seed))
        self.fn = as_chunk_fn(chunk_source, self._generator)
        self.n_action_steps = n_action_steps
        self.mode = mode
        self.n_obs_steps = n_obs_steps
        self.control_hz = float(control_hz)
        self.request_ahead_steps = request_ahead_steps
        self.blend_steps = blend_steps
        self.simulate_latency_steps = simulate_latency_steps
        self.starve_timeout_s = starve_timeout_s
        self.stats = ExecutorStats()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._generation = 0
        self.reset()

    # ------------------------------------------------------------------ episode API
    def reset(self, seed: int | None = None) -> None:
        """Start a new episode: clear history and queue; a request in flight is discarded.

        `seed` reseeds the torch generator handed to the policy (constructed with `seed=`), so an
        episode's chunks are reproducible.
        """
        with self._lock:
            self._generation += 1
        if seed is not None and self._generator is not None:
            self._generator.manual_seed(int(seed))
        self._history: collections.deque[dict[str, np.ndarray]] = collections.deque(maxlen=self.n_obs_steps)
        self._queue: np.ndarray | None = None  # (L, Da) actions for steps self._queue_step ...
        self._queue_step = 0  # step index of self._queue[0]
        self._chunk_step = 0  # step index of the current chunk's first executed action
        self._step = 0
        self._pending: _Pending | None = None

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker thread, first waiting up to `timeout_s` for a request in flight (so the
        chunk source, e.g. a `RemotePolicy` socket, is idle when the caller closes it)."""
        pending = self._pending
        self.reset()
        if pending is not None and pending.future is not None:
            try:
                pending.future.result(timeout=timeout_s)
            except Exception:  # its result is discarded anyway
                pass
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ChunkExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def step(self) -> int:
        """Steps executed since `reset()`."""
        return self._step

    @property
    def queue_len(self) -> int:
        """Actions left in the queue (including the tail past the execution horizon)."""
        return 0 if self._queue is None else len(self._queue)

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Return the action (Da,) for this control step given the current observation (unbatched)."""
        self._push_obs(obs)
        if self.mode == "sync":
            action = self._act_sync()
        else:
            action = self._act_async()
        self._step += 1
        self.stats.n_steps += 1
        return action

    # ------------------------------------------------------------------ internals
    def _push_obs(self, obs: Mapping[str, Any]) -> None:
        arrays = (np.ndarray, np.generic, float, int)
        frame = {k: np.asarray(v) for k, v in obs.items() if isinstance(v, arrays)}
        if not frame:
            raise ValueError("act(obs): obs has no array entries")
        if not self._history:
            for _ in range(self.n_obs_steps - 1):
                self._history.append(frame)
        self._history.append(frame)

    def _window(self) -> dict[str, np.ndarray]:
        return {k: np.stack([f[k] for f in self._history]) for k in self._history[-1]}

    def _predict(self, window: dict[str, np.ndarray]) -> np.ndarray:
        chunk = np.asarray(self.fn(window), dtype=np.float32)
        if chunk.ndim != 2 or chunk.shape[0] < 1:
            raise ValueError(f"chunk source returned shape {chunk.shape}, expected (T', Da) with T' >= 1")
        return chunk

    def _pop(self) -> np.ndarray:
        assert self._queue is not None and len(self._queue) > 0
        action = self._queue[0].copy()
        self._queue = self._queue[1:]
        self._queue_step += 1
        return action

    def _act_sync(self) -> np.ndarray:
        if self._queue is None or len(self._queue) == 0:
            t0 = time.perf_counter()
            chunk = self._predict(self._window())
            self.stats.latencies_s.append(time.perf_counter() - t0)
            self.stats.latency_steps.append(0)
            self.stats.n_chunks += 1
            self._queue = chunk[: self.n_action_steps]
            self._queue_step = self._chunk_step = self._step
        return self._pop()

    def _ahead(self) -> int:
        if self.request_ahead_steps is not None:
            return self.request_ahead_steps
        if self.simulate_latency_steps is not None:
            return min(self.n_action_steps, self.simulate_latency_steps + 1)
        if not self.stats.latencies_s:
            return max(1, self.n_action_steps // 2)
        lat = float(np.percentile(self.stats.latencies_s, 90))
        return int(min(self.n_action_steps, max(1, math.ceil(lat * self.control_hz) + 1)))

    def _submit(self) -> None:
        window = self._window()
        pending = _Pending(step=self._step, t_sent=time.perf_counter(), generation=self._generation)
        if self.simulate_latency_steps is not None:
            pending.result = self._predict(window)
            pending.ready_step = self._step + self.simulate_latency_steps
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-exec")
            pending.future = self._pool.submit(self._predict, window)
        self._pending = pending

    def _receive(self, timeout: float | None) -> None:
        """Take the pending chunk, drop its stale prefix and blend it into the queue."""
        pending = self._pending
        assert pending is not None
        chunk = pending.get(timeout)
        self._pending = None
        if pending.generation != self._generation:
            return
        latency_steps = self._step - pending.step
        if pending.future is not None:
            self.stats.latencies_s.append(time.perf_counter() - pending.t_sent)
        else:
            self.stats.latencies_s.append(latency_steps / self.control_hz)
        self.stats.latency_steps.append(latency_steps)
        self.stats.n_chunks += 1
        if latency_steps >= len(chunk):
            log.warning("chunk %d steps late has only %d actions; dropped", latency_steps, len(chunk))
            self.stats.n_stale_dropped += len(chunk)
            return
        self.stats.n_stale_dropped += latency_steps
        new = chunk[latency_steps:]
        old = self._queue if self._queue is not None else np.zeros((0, chunk.shape[1]), np.float32)
        m = min(self.blend_steps, len(old), len(new))
        if m > 0:
            w = (np.arange(1, m + 1, dtype=np.float32) / (m + 1))[:, None]
            new = new.copy()
            new[:m] = (1.0 - w) * old[:m] + w * new[:m]
            self.stats.n_blended += m
        self._queue = new
        self._queue_step = self._step
        self._chunk_step = pending.step

    def _act_async(self) -> np.ndarray:
        # 1. a chunk that has arrived replaces the queue (stale prefix dropped, overlap blended)
        if self._pending is not None and self._pending.ready(self._step):
            self._receive(timeout=None)
        # 2. nothing to execute (episode start, or the old chunk ran out): wait for the chunk
        if self._queue is None or len(self._queue) == 0:
            if self._pending is None:
                self._submit()
            elif self._queue is not None:
                self.stats.n_starved += 1
            assert self._pending is not None
            if self._pending.future is None:
                self._pending.ready_step = self._step  # simulated: waiting makes it ready now
            try:
                self._receive(timeout=self.starve_timeout_s)
            except TimeoutError:
                msg = f"no action chunk within starve_timeout_s={self.starve_timeout_s}"
                raise TimeoutError(msg) from None
            if self._queue is None or len(self._queue) == 0:
                # every action was stale: predict again and use it as is
                self._submit()
                if self._pending.future is None:
                    self._pending.ready_step = self._step
                self._receive(timeout=self.starve_timeout_s)
        # 3. request the next chunk when few actions remain before the execution horizon
        executed = self._step - self._chunk_step
        remaining = self.n_action_steps - executed
        if self._pending is None and remaining <= self._ahead():
            self._submit()
            if self._pending is not None and self._pending.ready(self._step):
                self._receive(timeout=None)  # zero simulated latency: use it this step
        return self._pop()
