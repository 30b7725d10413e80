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
    parser.add_argument(
        "action",
        choices=("generate", "allow", "show"),
        help="generate: write <name>.key (public) + <name>.key_secret (0600); allow: copy client "
        "public key files into an allow-list directory; show: print the public key of a key file",
    )
    parser.add_argument("files", nargs="*", type=Path, help="allow: clients' <name>.key files; show: one key file")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="generate: output directory (default keys/); allow: the allow-list directory",
    )
    parser.add_argument("--name", default=None, help="generate: key name, e.g. server or robot1")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")


def run(args: argparse.Namespace) -> int:
    from robo.transport.auth import allow_client, generate_keypair, load_public_key

    if args.action == "generate":
        if not args.name or args.files:
            raise ValueError("usage: robo keys generate --name NAME [--dir DIR]")
        try:
            public, secret = generate_keypair(args.dir or Path("keys"), args.name)
        except FileExistsError as e:
            raise ValueError(str(e)) from None
        print(f"public key: {public}  (copy to peers; servers list clients with `robo keys allow`)")
        print(f"secret key: {secret}  (mode 0600; keep on this machine)")
        return 0
    if args.action == "allow":
        if args.dir is None or not args.files:
            raise ValueError("usage: robo keys allow --dir ALLOW_DIR CLIENT.key [...]")
        for f in args.files:
            dst = allow_client(args.dir, f)
            print(f"allowed {f.name} -> {dst}")
        n = len(list(Path(args.dir).glob("*.key")))
        print(f"{n} client key(s) in {args.dir}; restart the server to apply")
        return 0
    if len(args.files) != 1:
        raise ValueError("usage: robo keys show KEY_FILE")
    print(load_public_key(args.files[0]).decode())
    return 0
