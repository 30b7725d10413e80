"""Remote policy serving: batching across clients, JPEG option, errors, and a delayed server process
driven by the async chunk executor without seams."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from runtime_helpers import TrajPolicy, traj

from robo.runtime.chunk_executor import ChunkExecutor
from robo.runtime.policy_server import PolicyServer
from robo.runtime.remote_policy import RemotePolicy
from robo.transport import RemoteError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
from transport_helpers import free_port, spawn, stop, wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def spawn_serve(ready: Path, *extra: str, env: dict[str, str] | None = None):
    """`robo serve` of the test trajectory policy in its own process, on a free loopback port; the
    endpoint lands in `ready` once it serves."""
    cmd = ["-m", "robo.cli", "serve", "--policy", "runtime_helpers:make_traj_policy",
           "--bind", f"tcp://127.0.0.1:{free_port()}", "--ready-file", str(ready), "--log-level", "WARNING", *extra]
    return spawn(cmd, env=env or {})


def obs_window(step: float, b: int = 1, flag: float = 0.0) -> dict[str, np.ndarray]:
    state = np.zeros((b, 2, 3), np.float32)
    state[:, :, 0] = step
    state[:, :, 1] = flag
    return {"observation.state": state}


def test_remote_policy_round_trip_and_info():
    with PolicyServer(TrajPolicy(), "tcp://127.0.0.1:*", policy_version="ckpt-7").start() as server:
        with RemotePolicy(server.endpoint, name="edge") as remote:
            assert remote.n_obs_steps == 2 and remote.n_action_steps == 8
            chunk = remote.predict_chunk(obs_window(5.0, b=2))
            assert chunk.shape == (2, 16, 2) and chunk.flags.writeable
            np.testing.assert_allclose(chunk[0], traj(5 + np.arange(16)), atol=1e-6)
            assert remote.policy_version == "ckpt-7" and remote.rtt_ms() > 0


def test_concurrent_clients_are_batched_and_each_gets_its_own_chunk():
    policy = TrajPolicy(delay_s=0.03)  # slow enough that requests pile up behind each other
    with PolicyServer(policy, "tcp://127.0.0.1:*", max_batch=8, batch_window_s=0.01).start() as server:
        results: dict[int, list[bool]] = {}

        def client(i: int) -> None:
            with RemotePolicy(server.endpoint, name=f"robot{i}") as remote:
                ok = []
                for k in range(6):
                    step = 100 * i + k
                    chunk = remote.predict_chunk(obs_window(step))
                    ok.append(np.allclose(chunk[0], traj(step + np.arange(16)), atol=1e-6))
                results[i] = ok

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [0, 1, 2, 3] and all(all(v) for v in results.values())
        assert max(server.batch_sizes) >= 2  # requests of different clients shared a forward pass
        assert max(policy.calls) >= 2 and sum(policy.calls) == 24


class ImagePolicy(TrajPolicy):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[np.ndarray] = []

    def predict_chunk(self, obs):
        self.seen.append(np.asarray(obs["observation.images.front"]).copy())
        return super().predict_chunk(obs)


def test_jpeg_images_edge_to_cloud():
    policy = ImagePolicy()
    img = np.zeros((1, 2, 48, 64, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None, None, None, :]
    with PolicyServer(policy, "tcp://127.0.0.1:*").start() as server:
        with RemotePolicy(server.endpoint, jpeg_quality=90) as remote:
            remote.predict_chunk({**obs_window(0.0), "observation.images.front": img})
    seen = policy.seen[0]
    assert seen.shape == img.shape and seen.dtype == np.uint8
    assert np.abs(seen.astype(int) - img.astype(int)).mean() < 3.0
    with pytest.raises(ValueError, match="jpeg_quality"):
        RemotePolicy("tcp://127.0.0.1:1", jpeg_quality=0)


def test_policy_errors_are_reported_and_server_keeps_serving():
    from runtime_helpers import make_failing_policy

    with PolicyServer(make_failing_policy(), "tcp://127.0.0.1:*").start() as server:
        with RemotePolicy(server.endpoint) as remote:
            with pytest.raises(RemoteError, match="policy_error.*negative input"):
                remote.predict_chunk(obs_window(0.0, flag=-1.0))
            with pytest.raises(RemoteError, match="bad_request"):
                remote.predict_chunk({**obs_window(1.0), "x": np.zeros(2, np.float32)})  # batch dims differ
            chunk = remote.predict_chunk(obs_window(3.0))
            np.testing.assert_allclose(chunk[0, 0], traj(3.0), atol=1e-6)


def test_a_served_policy_refuses_nonfinite_observations_and_never_sends_nonfinite_actions():
    class NanPolicy(TrajPolicy):
        def predict_chunk(self, obs):
            chunk = super().predict_chunk(obs)
            return chunk * np.nan if float(np.asarray(obs["observation.state"])[0, -1, 1]) > 0 else chunk

    policy = NanPolicy()
    with PolicyServer(policy, "tcp://127.0.0.1:*").start() as server:
        with RemotePolicy(server.endpoint) as remote:
            for bad in (np.nan, np.inf, -np.inf):
                obs = obs_window(1.0)
                obs["observation.state"][0, 1, 2] = bad
                with pytest.raises(RemoteError, match=r"bad_request.*'observation.state' contains NaN or inf"):
                    remote.predict_chunk(obs)
            with pytest.raises(RemoteError, match="policy_error.*NaN or inf actions"):
                remote.predict_chunk(obs_window(1.0, flag=1.0))
            np.testing.assert_allclose(remote.predict_chunk(obs_window(3.0))[0, 0], traj(3.0), atol=1e-6)
    assert len(policy.calls) == 2  # the non-finite observations never reached the policy


def _vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process (VmHWM, MB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_robo_serve_refuses_an_image_bomb_before_decoding_it(tmp_path):
    """The issue's 732-byte message whose JPEG declares 16000 x 16000 (768 MB decoded): `robo serve`
    answers it with an error at once, its memory peak stays put, and it keeps answering other robots."""
    import msgpack
    import zmq
    from transport_helpers import huge_jpeg

    from robo.transport.codec import decode, encode

    ready = tmp_path / "ready"
    cmd = ["-m", "robo.cli", "serve", "--policy", "runtime_helpers:make_image_policy",
           "--bind", f"tcp://127.0.0.1:{free_port()}", "--ready-file", str(ready), "--log-level", "ERROR"]
    proc = spawn(cmd, env={})
    try:
        wait_for(ready.exists, 60, "robo serve")
        endpoint = ready.read_text()
        image = {**obs_window(2.0), "observation.images.front": np.zeros((1, 2, 48, 64, 3), np.uint8)}
        with RemotePolicy(endpoint, name="robot") as remote:
            remote.predict_chunk(image)
            peak_before = _vm_hwm_mb(proc.pid)
            raw = zmq.Context.instance().socket(zmq.DEALER)
            raw.setsockopt(zmq.LINGER, 0)
            raw.connect(endpoint)
            good = [bytes(f) for f in encode("act_request", image, sender="careless", seq=9, jpeg_quality=80)]
            bomb = huge_jpeg()
            h = msgpack.unpackb(good[0])
            for shape in ([1, 2, 16000, 16000, 3], [1, 2, 48, 64, 3]):  # declared huge; declared as the spec
                h["a"] = [[d[0], "uint8", shape, "jpeg", 2] if d[0] == "observation.images.front" else d
                          for d in h["a"]]
                t0 = time.monotonic()
                raw.send_multipart([msgpack.packb(h), good[1], bomb, bomb])
                assert raw.poll(5000), "no reply to the bomb"
                reply = decode(raw.recv_multipart())
                assert reply.kind == "error" and reply.meta["code"] == "malformed" and reply.seq == 9
                assert time.monotonic() - t0 < 1.0  # s: refused, not decoded
                chunk = remote.predict_chunk(image)  # the others are still served
                np.testing.assert_allclose(chunk[0, 0], traj(2.0), atol=1e-6)
            raw.close()
            assert _vm_hwm_mb(proc.pid) - peak_before < 50.0  # MB
    finally:
        assert stop(proc) == 0


def run_robot(ex: ChunkExecutor, n: int, hz: float) -> np.ndarray:
    """A control loop at `hz` whose observation carries the step index."""
    out, dt = [], 1.0 / hz
    t_next = time.perf_counter()
    for k in range(n):
        state = np.array([k, 0.0, 0.0], np.float32)
        out.append(ex.act({"observation.state": state}))
        t_next += dt
        time.sleep(max(0.0, t_next - time.perf_counter()))
    return np.stack(out)


def test_delayed_server_process_still_gives_seamless_actions(tmp_path):
    """`robo serve` in its own process with 80 ms injected delay; the edge runs at 50 Hz (4 steps
    of latency per chunk) with the async executor: every executed action is the reference at its own
    step (stale prefixes skipped) and the motion has no jump larger than the reference's own."""
    ready = tmp_path / "ready"
    proc = spawn_serve(ready, "--delay-ms", "80", env={"TRAJ_HORIZON": "24"})
    try:
        wait_for(ready.exists, 60, "robo serve")
        with RemotePolicy(ready.read_text(), name="edge") as remote:
            with ChunkExecutor(remote, n_action_steps=12, mode="async", control_hz=50.0, blend_steps=3) as ex:
                assert ex.n_obs_steps == 2  # learned from the server's info
                actions = run_robot(ex, 120, hz=50.0)
                stats = ex.stats
        ref = traj(np.arange(120))
        assert stats.n_chunks >= 8
        assert stats.latency_ms(50) >= 80.0  # the injected delay was really there
        assert min(list(stats.latency_steps)[1:]) >= 3  # ...and spanned several control steps
        assert stats.n_stale_dropped >= 3 * (stats.n_chunks - 1)
        assert np.abs(actions - ref).max() < 1e-5  # aligned: stale prefix skipped exactly
        assert np.abs(np.diff(actions, axis=0)).max() <= np.abs(np.diff(ref, axis=0)).max() + 1e-5  # no seams
    finally:
        assert stop(proc) == 0  # SIGTERM: clean exit


def test_naive_execution_of_the_same_delayed_chunks_has_seams():
    """Guard for the test above: executing each late chunk from its start (no stale-prefix skip)
    replays old actions and jumps backwards at every chunk boundary."""
    policy = TrajPolicy(horizon=24)
    chunks = [policy.predict_chunk(obs_window(s))[0] for s in (0, 12, 24)]  # requested at these steps
    latency = 4
    naive = np.concatenate([chunks[0][: 12 + latency], chunks[1][:12], chunks[2][:12]])  # arrives 4 late
    ref = traj(np.arange(len(naive)))
    assert np.abs(naive - ref).max() > 0.3  # lags the reference by the latency
    assert np.abs(np.diff(naive, axis=0)).max() > np.abs(np.diff(ref, axis=0)).max() + 0.05  # a seam


def test_real_flow_policy_served_remote_equals_local(tmp_path):
    """A (tiny) robo flow policy with a camera: the executor gives the same actions whether the policy
    runs in-process or behind `PolicyServer` (same seed, raw frames), and the server batches tensors."""
    from robo.policies import FlowConfig, make_policy
    from robo.spec import Feature, Spec

    spec = Spec(
        {
            "observation.state": Feature((4,)),
            "action": Feature((2,)),
            "observation.images.cam": Feature((32, 32, 3), dtype="uint8"),
        }
    )
    stats = {
        "observation.state": {"min": [-1.0] * 4, "max": [1.0] * 4, "mean": [0.0] * 4, "std": [0.6] * 4},
        "action": {"min": [-2.0, -1.5], "max": [2.0, 1.5], "mean": [0.0, 0.0], "std": [1.0, 0.8]},
    }
    cfg = FlowConfig(
        horizon=8,
        n_obs_steps=2,
        n_action_steps=4,
        down_dims=(16, 32),
        time_embed_dim=16,
        state_feat_dim=16,
        image_feat_dim=16,
        image_channels=8,
        num_keypoints=8,
    )
    torch.manual_seed(0)
    make_policy("flow", cfg, spec, stats).save(tmp_path / "ckpt")
    from robo.commands.serve import load_any_policy

    policy = load_any_policy(str(tmp_path / "ckpt"), "cpu")  # what `robo serve --policy DIR` loads
    rng = np.random.default_rng(0)
    frames = [
        {
            "observation.state": rng.uniform(-1, 1, 4).astype(np.float32),
            "observation.images.cam": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        }
        for _ in range(10)
    ]
    local = ChunkExecutor(policy, n_action_steps=4, seed=0)
    local_actions = np.stack([local.act(f) for f in frames])
    with PolicyServer(policy, "tcp://127.0.0.1:*", seed=0).start() as server:
        with RemotePolicy(server.endpoint) as remote:
            ex = ChunkExecutor(remote, n_action_steps=remote.n_action_steps)
            assert (ex.n_obs_steps, ex.n_action_steps) == (2, 4)  # from the checkpoint's config via the server
            remote_actions = np.stack([ex.act(f) for f in frames])
    assert remote_actions.shape == (10, 2)
    np.testing.assert_allclose(remote_actions, local_actions, rtol=1e-5, atol=1e-6)


def test_robo_serve_with_curve_refuses_unknown_robots(tmp_path):
    from robo.cli import main as robo_main
    from robo.transport import AuthError, CurveConfig

    keys = tmp_path / "keys"
    for name in ("server", "robot1", "robot2"):
        assert robo_main(["keys", "generate", "--dir", str(keys), "--name", name]) == 0
    assert robo_main(["keys", "allow", "--dir", str(keys / "allowed"), str(keys / "robot1.key")]) == 0
    ready = tmp_path / "ready"
    proc = spawn_serve(ready, "--curve-secret", str(keys / "server.key_secret"), "--curve-allow", str(keys / "allowed"))
    try:
        wait_for(ready.exists, 60, "robo serve")
        endpoint = ready.read_text()
        for name in ("robot2", None):  # a key not on the allow-list, then no CURVE at all
            curve = CurveConfig(keys / f"{name}.key_secret", server_public_file=keys / "server.key") if name else None
            with pytest.raises(AuthError):
                RemotePolicy(endpoint, curve=curve, connect_timeout_s=1.5)
        curve = CurveConfig(keys / "robot1.key_secret", server_public_file=keys / "server.key")
        with RemotePolicy(endpoint, curve=curve) as remote:
            chunk = remote.predict_chunk(obs_window(2.0))
        np.testing.assert_allclose(chunk[0], traj(2 + np.arange(16)), atol=1e-6)
    finally:
        assert stop(proc) == 0


@pytest.mark.timeout(300)
def test_robo_eval_of_a_served_checkpoint_matches_the_local_eval(lift_bc, tmp_path):
    """`robo serve --policy <BC run>` in one process, `robo eval --policy tcp://...` in another: every
    chunk crosses the network, the task and the state statistics come from the server, and with the
    edge sending each episode's sampling noise the episodes come out exactly as in the local evaluation of
    the same checkpoint, without and with a residual run on top (the residual runs on the edge)."""
    import json
    import subprocess

    from robo.learn.residual_td3 import ALGORITHM, ResidualTD3Config
    from robo.learn.spine import train
    from robo.policies import load_policy

    root, summary = lift_bc
    base = load_policy(summary["checkpoint"])
    residual_run = tmp_path / "residual"
    train(ALGORITHM, ResidualTD3Config(
        task="PandaLift-v0", base=summary["checkpoint"], demos=str(root / "demos"), total_env_steps=800,
        learning_starts=200, critic_warmup_updates=100, actor_hidden=64, critic_hidden=64, num_q=2, batch_size=64,
        explore_std=0.1, action_scale=0.2, eval_every=10_000, eval_episodes=1, final_eval_episodes=1,
        checkpoint_every=10_000, torch_threads=1, device="cpu"), residual_run, report=False)
    def robo_eval(policy: str, out: str, *extra: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "robo.cli", "eval", "--policy", policy, "--episodes", "12",
                               "--seed", "500", "--videos", "0", "--out", str(tmp_path / out), *extra],
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        return json.loads((tmp_path / out / "report.json").read_text())

    def robo_eval_served(out: str, *extra: str) -> dict:
        """Against a freshly started server seeded unlike the eval: the edge sends each episode's noise."""
        ready = tmp_path / f"ready_{out}"
        server = spawn(["-m", "robo.cli", "serve", "--policy", str(root / "bc"), "--bind",
                        f"tcp://127.0.0.1:{free_port()}", "--ready-file", str(ready), "--seed", "7",
                        "--log-level", "WARNING"])
        try:
            wait_for(ready.exists, 60, "robo serve")
            with RemotePolicy(ready.read_text()) as remote:
                assert remote.task == "PandaLift-v0"
                for key in ("observation.state", "action"):
                    for stat in ("mean", "std"):
                        np.testing.assert_array_equal(remote.stats[key][stat], np.asarray(base.stats[key][stat]))
            return robo_eval(ready.read_text(), out, *extra)
        finally:
            assert stop(server) == 0

    remote = robo_eval_served("remote")
    remote_res = robo_eval_served("remote_res", "--residual", str(residual_run))
    local = robo_eval(str(root / "bc"), "local")
    local_res = robo_eval(str(root / "bc"), "local_res", "--residual", str(residual_run))
    assert remote["remote"]["requests"] >= 12 and remote["remote"]["rtt_ms_p50"] > 0
    r, l = remote["results"]["base"], local["results"]["base"]
    assert r["task"] == l["task"] == "PandaLift-v0"  # the server told the edge which task it was trained on
    assert r["successes"] == l["successes"] and r["lengths"] == l["lengths"]
    assert 0 < sum(r["successes"]) < 12  # a partial success rate, so agreement is not trivial
    rr, lr = remote_res["results"]["base+residual"], local_res["results"]["base+residual"]
    assert rr["successes"] == lr["successes"] and rr["lengths"] == lr["lengths"]
    assert rr["lengths"] != r["lengths"]  # the residual changed the episodes, so it was really applied
