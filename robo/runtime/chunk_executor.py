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

Batched (`n_envs=N`, sync mode): one executor runs N environments; `act_batch(obs_list, envs)` gives
the listed envs their actions, predicting the chunks of every env whose queue ran out in ONE
`predict_chunk` call (B = number of such envs). `reset(env=i)` starts env i's next episode. This is
what evaluation, the residual RL environments and demo relabelling use; async mode is for one robot
(N = 1) driven at its control rate.
"""

from __future__ import annotations

import collections
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["ChunkExecutor", "ChunkSource", "ExecutorStats", "as_batch_fn", "as_chunk_fn"]


@runtime_checkable
class ChunkSource(Protocol):
    """Anything with the policy inference contract: obs {key: (B, To, ...)} -> (B, T', Da)."""

    def predict_chunk(self, obs: dict[str, Any]) -> Any: ...


ChunkFn = Callable[[dict[str, np.ndarray]], np.ndarray]
BatchChunkFn = Callable[[dict[str, np.ndarray]], np.ndarray]


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


def as_batch_fn(source: ChunkSource | ChunkFn, generator: Any = None) -> BatchChunkFn:
    """Wrap a policy (or a callable) as `fn(windows {key: (B, To, ...)}) -> (B, T', Da) float32`.

    A torch module gets tensors on its device under `torch.no_grad()` (and `generator=` when given and
    its `predict_chunk` accepts one, for reproducible sampling); anything else with `predict_chunk`
    gets numpy arrays. A callable without `predict_chunk` takes one window {key: (To, ...)} and
    returns (T', Da) or (1, T', Da); it is called once per batch row.
    """
    if not hasattr(source, "predict_chunk"):
        fn = source

        def call_fn(windows: dict[str, np.ndarray]) -> np.ndarray:
            n = len(next(iter(windows.values())))
            outs = []
            for b in range(n):
                out = _to_numpy(fn({k: v[b] for k, v in windows.items()}))  # type: ignore[operator]
                outs.append(out[0] if out.ndim == 3 else out)
            return np.stack([np.asarray(o, np.float32) for o in outs])

        return call_fn

    policy = source
    if hasattr(policy, "parameters") and hasattr(policy, "state_dict"):
        import torch

        use_generator = generator is not None and _accepts(policy.predict_chunk, "generator")
        noise_shape = initial_noise_shape(policy)

        def call_torch(windows: dict[str, np.ndarray], generators: Sequence[Any] | None = None) -> np.ndarray:
            try:
                device = next(policy.parameters()).device  # type: ignore[attr-defined]
            except StopIteration:
                device = torch.device("cpu")
            batch = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in windows.items()}
            kwargs: dict[str, Any] = {"generator": generator} if use_generator else {}
            if generators is not None and noise_shape is not None:
                kwargs["noise"] = _row_noise(noise_shape, generators)
            with torch.no_grad():
                out = policy.predict_chunk(batch, **kwargs)
            return _to_numpy(out).astype(np.float32, copy=False)

        call_torch.per_row_noise = noise_shape is not None  # type: ignore[attr-defined]
        return call_torch

    noise_shape = initial_noise_shape(policy)

    def call_numpy(windows: dict[str, np.ndarray], generators: Sequence[Any] | None = None) -> np.ndarray:
        kwargs = {}
        if generators is not None and noise_shape is not None:
            kwargs["noise"] = _row_noise(noise_shape, generators).numpy()
        return _to_numpy(policy.predict_chunk(windows, **kwargs)).astype(np.float32, copy=False)

    call_numpy.per_row_noise = noise_shape is not None  # type: ignore[attr-defined]
    return call_numpy


def _row_noise(shape: tuple[int, int], generators: Sequence[Any]) -> Any:
    """(B, T, Da) initial noise, row b drawn from generators[b] (each env's own stream)."""
    import torch

    return torch.stack([torch.randn(shape, generator=g) for g in generators])


def initial_noise_shape(policy: Any) -> tuple[int, int] | None:
    """(T, Da) of the noise a robo chunk policy starts sampling from, when `predict_chunk` takes `noise=`."""
    config = getattr(policy, "config", None)
    if not _accepts(policy.predict_chunk, "noise") or not isinstance(getattr(config, "horizon", None), int):
        return None
    action_dim = getattr(policy, "action_dim", None)
    return (int(config.horizon), int(action_dim)) if isinstance(action_dim, int) else None


def as_chunk_fn(source: ChunkSource | ChunkFn, generator: Any = None) -> ChunkFn:
    """`as_batch_fn` for one window: `fn(window {key: (To, ...)}) -> (T', Da) float32`."""
    return _one_window(as_batch_fn(source, generator))


def _one_window(batch_fn: BatchChunkFn) -> ChunkFn:
    def call_one(window: dict[str, np.ndarray]) -> np.ndarray:
        return batch_fn({k: np.asarray(v)[None] for k, v in window.items()})[0]

    return call_one


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


def _frame(obs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The array entries of one observation (strings and other metadata are not sent to a policy)."""
    arrays = (np.ndarray, np.generic, float, int)
    frame = {k: np.asarray(v) for k, v in obs.items() if isinstance(v, arrays)}
    if not frame:
        raise ValueError("act(obs): obs has no array entries")
    return frame


class _EnvQueue:
    """Sync-mode state of one env: its observation history, the actions left of its chunk, its step."""

    def __init__(self, n_obs_steps: int) -> None:
        self.history: collections.deque[dict[str, np.ndarray]] = collections.deque(maxlen=n_obs_steps)
        self.queue: np.ndarray = np.zeros((0, 0), np.float32)
        self.step = 0


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
            accepted), making sync mode reproducible run to run. A robo chunk policy in sync mode also
            gets each env's initial noise from that env's own generator (seeded `seed + i`, reseeded by
            `reset(seed=, env=i)`), so an env's chunks do not depend on the other envs in the batch.
        n_envs: sync mode: environments run by this executor (`act_batch`); async mode needs 1.
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
        n_envs: int = 1,
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
        if n_envs < 1 or (mode == "async" and n_envs != 1):
            raise ValueError(f"n_envs={n_envs}: must be >= 1, and 1 in async mode (one robot per executor)")
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
        self.batch_fn = as_batch_fn(chunk_source, self._generator)
        self._env_generators = None
        if seed is not None and mode == "sync" and getattr(self.batch_fn, "per_row_noise", False):
            import torch

            self._env_generators = [torch.Generator().manual_seed(int(seed) + i) for i in range(n_envs)]
        self.fn = _one_window(self.batch_fn)
        self.n_envs = n_envs
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
    def reset(self, seed: int | None = None, *, env: int | None = None) -> None:
        """Start a new episode: clear history and queue; a request in flight is discarded.

        `seed` reseeds the torch generators handed to the policy (constructed with `seed=`), so an
        episode's chunks are reproducible. `env=i` (batched sync mode) resets env i only, leaving the
        other envs as they are; with `seed`, env i's own noise generator restarts from it (an
        evaluation seeds each episode's noise with the episode's seed).
        """
        if env is not None:
            if not 0 <= env < self.n_envs:
                raise IndexError(f"env {env} out of range for n_envs={self.n_envs}")
            if self.mode == "sync":
                self._sync[env] = _EnvQueue(self.n_obs_steps)
                if seed is not None and self._env_generators is not None:
                    self._env_generators[env].manual_seed(int(seed))
                return  # async: one env, so its reset is the executor's
        self._sync = [_EnvQueue(self.n_obs_steps) for _ in range(self.n_envs)]
        with self._lock:
            self._generation += 1
        if seed is not None and self._generator is not None:
            self._generator.manual_seed(int(seed))
        if seed is not None:
            for i, g in enumerate(self._env_generators or ()):
                g.manual_seed(int(seed) + i)
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
        """Steps executed since `reset()` (env 0)."""
        return self._sync[0].step if self.mode == "sync" else self._step

    @property
    def queue_len(self) -> int:
        """Actions left in the queue (env 0; async: including the tail past the execution horizon)."""
        if self.mode == "sync":
            return len(self._sync[0].queue)
        return 0 if self._queue is None else len(self._queue)

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Return the action (Da,) for this control step given the current observation (unbatched)."""
        if self.mode == "sync":
            return self.act_batch([obs], [0])[0]
        frame = _frame(obs)
        if self._history:
            self._history.append(frame)
        else:  # pad the history at episode start by repeating the first observation
            self._history.extend([frame] * self.n_obs_steps)
        action = self._act_async()
        self._step += 1
        self.stats.n_steps += 1
        return action

    def act_batch(self, obs: Sequence[Mapping[str, Any]], envs: Sequence[int] | None = None) -> np.ndarray:
        """Sync mode: actions (len(envs), Da) for the given envs' current observations (default envs
        0..len(obs)-1). The chunks of all listed envs whose queue ran out are predicted in one call.
        Async mode (one env): `act(obs[0])` as a batch of one, so batched callers drive a robot alike."""
        if self.mode != "sync":
            if len(obs) != 1 or (envs is not None and list(envs) != [0]):
                raise ValueError("act_batch in async mode takes one env (env 0): one robot per executor")
            return self.act(obs[0])[None]
        envs = list(range(len(obs))) if envs is None else list(envs)
        if len(envs) != len(obs):
            raise ValueError(f"act_batch: {len(obs)} observations for {len(envs)} envs")
        for i, o in zip(envs, obs):
            q = self._sync[i]
            frame = _frame(o)
            if q.history:
                q.history.append(frame)
            else:  # pad the history at episode start by repeating the first observation
                q.history.extend([frame] * self.n_obs_steps)
        need = [i for i in envs if len(self._sync[i].queue) == 0]
        if need:
            keys = self._sync[need[0]].history[-1].keys()
            windows = {k: np.stack([np.stack([f[k] for f in self._sync[i].history]) for i in need]) for k in keys}
            t0 = time.perf_counter()
            if self._env_generators is not None:
                chunks = self.batch_fn(windows, [self._env_generators[i] for i in need])  # type: ignore[call-arg]
            else:
                chunks = self.batch_fn(windows)
            chunks = np.asarray(chunks, dtype=np.float32)
            if chunks.ndim != 3 or chunks.shape[0] != len(need) or chunks.shape[1] < 1:
                raise ValueError(f"chunk source returned shape {chunks.shape}, "
                                 f"expected ({len(need)}, T', Da) with T' >= 1")
            self.stats.latencies_s.append(time.perf_counter() - t0)
            self.stats.latency_steps.append(0)
            self.stats.n_chunks += len(need)
            for j, i in enumerate(need):
                self._sync[i].queue = chunks[j, : self.n_action_steps]
        out = []
        for i in envs:
            q = self._sync[i]
            out.append(q.queue[0].copy())
            q.queue = q.queue[1:]
            q.step += 1
        self.stats.n_steps += len(envs)
        return np.stack(out)

    # ------------------------------------------------------------------ internals
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
