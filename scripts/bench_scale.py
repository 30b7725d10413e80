"""Scale-out throughput: N simulated actors on Ray beside the same N through `--actors N` (local processes).

    python scripts/bench_scale.py                       # 1, 2, 4 actors each way + the transport check
    python scripts/bench_scale.py --actors 1 2 --steps 3000 --skip-transport

Both placements run the same spine (one learner, N actors: robo.runtime.launch.launch_local and
robo.cluster.placement.train_on_ray) on residual TD3 with no base (the actors' cost is MuJoCo + the
explorer) and `learning_starts` = the budget: the learner validates, stores (fsync) and acknowledges
rows but makes no update, so what is measured is collection and delivery, not the learner's updates. Rates are steady
state: stored rows (transitions) per second between the learner's first and last log points (every 500
rows, TensorBoard wall times), so process and Ray start-up are not counted; env steps/s is the same
window times the run's env steps per stored row.

The transport check times one batch of rows actor -> learner, acknowledged, through robo's RPC and
through a Ray actor call (the object store for large arguments), small (state rows) and large (rows
with two 64x64 RGB images).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
# the bench's own local cluster, for minutes: no token auth, so no ~/.ray/auth_token is left behind
# (Ray creates one for a new local cluster, and then turns token auth on for every later cluster)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def config_file(root: Path, steps: int) -> Path:
    import yaml

    path = root / "bench_scale.yaml"
    path.write_text(yaml.safe_dump({
        "task": "PandaLift-v0", "base": "none", "total_env_steps": steps, "learning_starts": steps, "utd": 1,
        "actor_hidden": 32, "critic_hidden": 32, "num_q": 2, "batch_size": 64, "critic_warmup_updates": 0,
        "eval_every": 10_000_000, "eval_episodes": 1, "final_eval_episodes": 1, "final_videos": 0,
        "checkpoint_every": 10_000_000, "torch_threads": 1, "device": "cpu", "buffer_size": steps,
        "max_actor_lead": 2000,
    }))
    return path


def steady_rates(run_dir: Path) -> tuple[float, float]:
    """(transitions/s, env steps/s) between the learner's first and last log points."""
    import torch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    events = [e for e in acc.Scalars("charts/episodes") if e.step > 0]
    if len(events) < 2:
        return float("nan"), float("nan")
    rows = (events[-1].step - events[0].step) / max(1e-9, events[-1].wall_time - events[0].wall_time)
    counters = torch.load(run_dir / "checkpoint" / "state.pt", weights_only=False)["counters"]
    return rows, rows * counters["env_steps"] / max(1, counters["n_rows"])


def run_local(cfg_path: Path, n: int, run_dir: Path) -> tuple[float, float]:
    from robo.runtime.launch import launch_local

    assert launch_local("td3", cfg_path, n, run_dir, log_level="ERROR") == 0
    return steady_rates(run_dir)


def run_ray(cfg_path: Path, n: int, run_dir: Path) -> tuple[float, float]:
    from robo.cluster.placement import RayPlan, train_on_ray
    from robo.learn.algo import get_algorithm, load_rl_config

    algo = get_algorithm("td3")
    cfg = load_rl_config(algo, cfg_path, [], profile="cpu")
    assert train_on_ray(algo, cfg, run_dir, RayPlan(n_sim_actors=n)) == 0
    return steady_rates(run_dir)


# ==================================================================================== transport
def _rows(n: int, images: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    rows = {k: rng.standard_normal((n, d)).astype(np.float32) for k, d in
            (("obs", 24), ("next_obs", 24), ("base", 7), ("next_base", 7), ("action", 7))}
    rows.update(reward=np.zeros(n, np.float32), discount=np.ones(n, np.float32))
    if images:
        for k in ("image", "next_image"):
            rows[k] = rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8)
    return rows


def time_robo(rows: dict[str, np.ndarray], reps: int) -> float:
    from robo.runtime.launch import free_port
    from robo.transport import RpcClient, RpcServer

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = RpcServer(endpoint, name="bench-learner")
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            req = server.recv(0.05)
            if req is not None:
                server.reply(req, "ack", None, {"n": len(req.msg.arrays["obs"])})

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client = RpcClient(endpoint, name="bench-actor", timeout_s=10.0)
    try:
        for _ in range(3):
            client.call("transitions", rows, {"uid": "warm"})
        t0 = time.perf_counter()
        for i in range(reps):
            client.call("transitions", rows, {"uid": str(i)})
        return (time.perf_counter() - t0) / reps * 1e3
    finally:
        stop.set()
        t.join()
        client.close()
        server.close()


def time_ray(rows: dict[str, np.ndarray], reps: int) -> float:
    import ray

    @ray.remote(num_cpus=0)
    class Sink:
        def add(self, rows: dict[str, np.ndarray]) -> int:
            return len(rows["obs"])

    sink = Sink.remote()
    for _ in range(3):
        ray.get(sink.add.remote(rows))
    t0 = time.perf_counter()
    for _ in range(reps):
        ray.get(sink.add.remote(rows))
    ms = (time.perf_counter() - t0) / reps * 1e3
    ray.kill(sink)
    return ms


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--steps", type=int, default=3000, help="env steps per run (default: %(default)s)")
    p.add_argument("--skip-transport", action="store_true")
    p.add_argument("--skip-scale", action="store_true")
    args = p.parse_args()
    import ray

    ray.init(num_cpus=max(args.actors) + 1, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    root = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        print(f"bench_scale: {os.cpu_count()} CPU cores, {args.steps} env steps per run, PandaLift-v0, td3, no base")
        if not args.skip_transport:
            print("\ntransport: one batch actor -> learner, acknowledged (ms per batch, mean of reps)")
            print(f"{'batch':<34}{'robo RPC':>10}{'Ray call':>10}")
            for label, rows, reps in (("256 state rows (48 KB)", _rows(256, False), 200),
                                      ("256 rows + 2 images 64x64 (6.3 MB)", _rows(256, True), 20)):
                print(f"{label:<34}{time_robo(rows, reps):>10.2f}{time_ray(rows, reps):>10.2f}")
        if not args.skip_scale:
            cfg_path = config_file(root, args.steps)
            print(f"\n{'actors':<8}{'local steps/s':>15}{'local trans/s':>15}{'ray steps/s':>13}{'ray trans/s':>13}")
            for n in args.actors:
                local = run_local(cfg_path, n, root / f"local{n}")
                on_ray = run_ray(cfg_path, n, root / f"ray{n}")
                print(f"{n:<8}{local[1]:>15.0f}{local[0]:>15.0f}{on_ray[1]:>13.0f}{on_ray[0]:>13.0f}", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
