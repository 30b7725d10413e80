"""`robo console`: the operator console for a running session, or a browser of a recorded dataset.

    robo console --attach <session>             # a running robo collect / run / intervene (name or pid)
    robo console --dataset runs/hil/x/dataset   # episodes, video, per-frame action_source / segment timeline
    robo console --list                         # running sessions

Sessions started with `--console [host:port]` serve the page themselves; `--attach` starts it in a
running session that was started without (see robo/console/cli.py). Binds to localhost by default;
any other bind (`--bind 0.0.0.0:8765`) needs the token printed at start.
"""

from __future__ import annotations

import argparse
import time

HELP = "operator console: attach a web page to a running session, or browse a recorded dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[1]
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--attach", metavar="SESSION", help="a running session's name or pid")
    what.add_argument("--dataset", metavar="DIR", help="a robo (LeRobot v3) dataset folder to browse")
    what.add_argument("--list", action="store_true", help="list the running sessions")
    parser.add_argument("--bind", default=None, metavar="HOST:PORT",
                        help="where to serve (default 127.0.0.1:8765); a non-loopback bind needs the printed token")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def run(args: argparse.Namespace) -> int:
    from robo.console.cli import DEFAULT_BIND, attach, running_sessions

    if args.list:
        sessions = running_sessions()
        for r in sessions:
            print(f"{r['name']}\t{r['mode']}\tpid {r['pid']}\t{r.get('url') or 'no console yet (--attach starts one)'}")
        if not sessions:
            print("no running sessions")
        return 0
    if args.attach:
        print(f"console of {args.attach}: {attach(args.attach, args.bind)}")
        return 0
    from robo.console.server import ConsoleServer, parse_bind

    host, port = parse_bind(args.bind or DEFAULT_BIND)
    server = ConsoleServer(dataset=args.dataset, host=host, port=port).start()
    print(f"console: {server.url} ({'localhost only' if server.token is None else 'the token is required'}); "
          "Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
