"""`robo serve`: serve a policy checkpoint to edge clients over ZMQ (batched, optionally CURVE-authenticated).

    robo serve --policy runs/bc/checkpoint --bind tcp://*:5555
    robo serve --policy runs/bc/checkpoint --curve-secret keys/server.key_secret --curve-allow keys/allowed

Edge side: `RemotePolicy("tcp://gpu-box:5555")` driven by a `ChunkExecutor` (robo.runtime).
`--policy` is a checkpoint directory (`load_policy`) or `package.module:factory` returning any object
with `predict_chunk` (custom and test policies).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import threading
from pathlib import Path

from robo.commands import setup_logging
from robo.transport.auth import add_curve_arguments, curve_from_args

HELP = "serve a policy checkpoint to edge clients over ZMQ"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="checkpoint directory, or module:factory")
    parser.add_argument("--bind", default="tcp://*:5555", help="ZMQ endpoint to bind (default tcp://*:5555)")
    parser.add_argument("--device", default="auto", help="torch device for a checkpoint (auto, cpu, cuda)")
    parser.add_argument("--max-batch", type=int, default=8, help="most requests answered by one forward pass")
    parser.add_argument(
        "--batch-window-ms", type=float, default=2.0, help="how long to wait for more requests after the first one"
    )
    parser.add_argument("--delay-ms", type=float, default=0.0, help="inject latency before each reply (testing)")
    parser.add_argument("--seed", type=int, default=None, help="seed the sampler for reproducible chunks")
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="write the bound endpoint here once serving (for scripts binding port 0 / '*')",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    add_curve_arguments(parser, "server")


def load_any_policy(spec: str, device: str = "auto"):
    """A checkpoint directory -> `robo.policies.load_policy`; `module:factory` -> factory()."""
    from robo.policies import checkpoint_dir

    path = checkpoint_dir(spec)  # a BC run folder -> its checkpoint/
    if path.is_dir():
        from robo.learn.common import pick_device
        from robo.policies import load_policy

        return load_policy(path, map_location=str(pick_device(device)))
    if ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--policy {spec}: cannot import ({e})") from None
        return factory()
    raise FileNotFoundError(f"--policy {spec}: no such checkpoint directory")


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    from robo.runtime.policy_server import PolicyServer
    from robo.transport.malloc import keep_freed_buffers

    keep_freed_buffers()  # received multi-MB frames: reuse their memory, no page faults per message

    policy = load_any_policy(args.policy, args.device)
    from robo.policies import checkpoint_task

    task = checkpoint_task(args.policy) if Path(args.policy).is_dir() else None
    curve = curve_from_args(args, "server")
    server = PolicyServer(
        policy,
        args.bind,
        curve=curve,
        max_batch=args.max_batch,
        batch_window_s=args.batch_window_ms / 1e3,
        delay_s=args.delay_ms / 1e3,
        seed=args.seed,
        policy_version=Path(args.policy).name,
        info={"task": task} if task else None,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"robo serve: serving {args.policy} on {server.endpoint} (CURVE {'on' if curve else 'off'})", flush=True)
    if args.ready_file is not None:
        tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
        tmp.write_text(server.endpoint)
        tmp.replace(args.ready_file)
    try:
        server.serve_forever(stop)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        print(f"robo serve: stopped after {server.n_served} requests; batch sizes {dict(server.batch_sizes)}")
    return 0
