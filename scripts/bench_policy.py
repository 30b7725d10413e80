"""CPU inference latency of the action-chunk policies: one `predict_chunk` call per row, batch 1.

    python scripts/bench_policy.py [--threads 1] [--calls 50] [--state-dim 20] [--action-dim 7]
    python scripts/bench_policy.py --teacher runs/bc/<run>/checkpoint [--head runs/bc/<run>/distilled_1step]

Policies use their default configs (To=2, T=16, U-Net down_dims=(64, 128, 256) or the MLP backbone
(3 x 512)) with random weights; latency does not depend on the weights. Rows: diffusion DDIM-10,
flow K=1, flow K=4, for each backbone. Then the 1-step consistency head (`robo distill`) beside its
teacher, timed side by side (calls alternate between the two): the head is the teacher's architecture
with one step (robo.learn.distill.make_student), so random weights time it exactly; `--teacher` (and
`--head`) time real checkpoints instead.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from robo.policies import DiffusionConfig, FlowConfig, make_policy
from robo.spec import Feature, Spec


def bench(policy, obs: dict[str, np.ndarray], calls: int, warmup: int = 5) -> np.ndarray:
    """Latencies in ms of `calls` predict_chunk calls (after `warmup` untimed calls)."""
    for i in range(warmup):
        policy.predict_chunk(obs, seed=i)
    out = []
    for i in range(calls):
        t0 = time.perf_counter()
        policy.predict_chunk(obs, seed=i)
        out.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--state-dim", type=int, default=20)
    ap.add_argument("--action-dim", type=int, default=7)
    ap.add_argument("--teacher", default=None, help="a checkpoint to time beside its 1-step head")
    ap.add_argument("--head", default=None, help="the head's checkpoint (default: made from --teacher)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds, da = args.state_dim, args.action_dim
    spec = Spec({"observation.state": Feature((ds,)), "action": Feature((da,))})
    stats = {
        "observation.state": {"min": [-1.0] * ds, "max": [1.0] * ds, "mean": [0.0] * ds, "std": [1.0] * ds},
        "action": {"min": [-1.0] * da, "max": [1.0] * da, "mean": [0.0] * da, "std": [1.0] * da},
    }
    rows = [
        (f"{name} {label} {bb}", name, cls(num_inference_steps=k, backbone=bb))
        for bb in ("unet", "mlp")
        for name, cls, label, k in (("diffusion", DiffusionConfig, "DDIM-10", 10), ("flow", FlowConfig, "K=1", 1),
                                    ("flow", FlowConfig, "K=4", 4))
    ]
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, {cpu}, "
          f"batch 1, Ds={ds}, Da={da}, {args.calls} calls")
    print(f"{'policy':<28}{'params':>10}{'p50 ms':>10}{'p90 ms':>10}{'ms/step':>10}")
    for label, name, cfg in rows:
        torch.manual_seed(0)
        policy = make_policy(name, cfg, spec, stats).eval()
        obs = {"observation.state": np.random.default_rng(0).standard_normal((1, cfg.n_obs_steps, ds), np.float32)}
        lat = bench(policy, obs, args.calls)
        n_params = sum(p.numel() for p in policy.parameters())
        p50, p90 = np.percentile(lat, [50, 90])
        print(f"{label:<28}{n_params / 1e6:>9.2f}M{p50:>10.2f}{p90:>10.2f}{p50 / cfg.num_inference_steps:>10.2f}")
    bench_heads(args, spec, stats)


def side_by_side(a, b, obs: dict[str, np.ndarray], calls: int) -> tuple[float, float]:
    """p50 ms of `a` and `b`, their calls alternating (so machine load hits both alike)."""
    for i in range(5):
        a.predict_chunk(obs, seed=i)
        b.predict_chunk(obs, seed=i)
    ta, tb = [], []
    for i in range(calls):
        for policy, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            policy.predict_chunk(obs, seed=i)
            out.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ta)), float(np.median(tb))


def bench_heads(args: argparse.Namespace, spec: Spec, stats: dict) -> None:
    from robo.learn.distill import make_student
    from robo.policies import load_policy

    if args.teacher:
        teacher = load_policy(args.teacher)
        head = load_policy(args.head) if args.head else make_student(teacher)
        pairs = [(f"{args.teacher} (K={teacher.config.num_inference_steps})", teacher, head)]
    else:
        pairs = []
        for bb in ("unet", "mlp"):
            for name, cls, label, k in (("diffusion", DiffusionConfig, "DDIM-10", 10), ("flow", FlowConfig, "K=4", 4)):
                torch.manual_seed(0)
                teacher = make_policy(name, cls(num_inference_steps=k, backbone=bb), spec, stats).eval()
                pairs.append((f"{name} {label} {bb}", teacher, make_student(teacher).eval()))
    print("\n1-step consistency head beside its teacher (same backbone; calls alternate)")
    print(f"{'teacher':<28}{'teacher p50':>12}{'head p50':>10}{'speed-up':>10}")
    for label, teacher, head in pairs:
        obs = {"observation.state": np.random.default_rng(0).standard_normal(
            (1, teacher.config.n_obs_steps, teacher.state_dim), np.float32)}
        t, h = side_by_side(teacher, head, obs, args.calls)
        print(f"{label:<28}{t:>12.2f}{h:>10.2f}{t / h:>9.1f}x")


if __name__ == "__main__":
    main()
