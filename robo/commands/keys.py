"""`robo keys`: CurveZMQ key pairs and allow-lists for authenticated transport.

robo keys generate --dir keys --name server          # keys/server.key (public), server.key_secret
robo keys allow --dir keys/allowed keys/robot1.key   # let robot1 connect to this server
robo keys show keys/robot1.key                       # print a public key (Z85)
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "generate CurveZMQ key pairs for authenticated transport"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="<action>")
    gen = sub.add_parser("generate", help="write <name>.key (public) and <name>.key_secret (0600)")
    gen.add_argument("--dir", type=Path, default=Path("keys"), help="output directory (default keys/)")
    gen.add_argument("--name", required=True, help="key name, e.g. server or robot1")
    allow = sub.add_parser("allow", help="copy a client's public key into a server's allow-list directory")
    allow.add_argument("--dir", type=Path, required=True, help="allow-list directory (server --curve-allow)")
    allow.add_argument("public_key", type=Path, help="the client's <name>.key file")
    show = sub.add_parser("show", help="print the public key held in a key file")
    show.add_argument("key_file", type=Path)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def run(args: argparse.Namespace) -> int:
    from robo.transport.auth import allow_client, generate_keypair, load_public_key

    if args.action == "generate":
        try:
            public, secret = generate_keypair(args.dir, args.name)
        except FileExistsError as e:
            raise ValueError(str(e)) from None
        print(f"public key: {public}  (copy to peers; servers list clients with `robo keys allow`)")
        print(f"secret key: {secret}  (mode 0600; keep on this machine)")
        return 0
    if args.action == "allow":
        dst = allow_client(args.dir, args.public_key)
        n = len(list(Path(args.dir).glob("*.key")))
        print(f"allowed {args.public_key.name} -> {dst} ({n} client key(s) in {args.dir}; restart the server)")
        return 0
    print(load_public_key(args.key_file).decode())
    return 0
