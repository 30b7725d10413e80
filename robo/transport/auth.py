"""CurveZMQ authentication: key files, server allow-lists, client configuration.

Keys use libzmq's certificate files (Z85 text): `<name>.key` holds the public key and may be copied
anywhere; `<name>.key_secret` holds both keys and stays on its machine (mode 0600).

    robo keys generate --dir keys --name server       # on the GPU box
    robo keys generate --dir keys --name robot1       # on the robot
    robo keys allow --dir keys/allowed keys/robot1.key  # on the server: add robot1 to the allow-list

A server with `CurveConfig(secret_file="keys/server.key_secret", allow_dir="keys/allowed")` accepts
only clients whose public key file is in `allow_dir`; a client uses
`CurveConfig(secret_file="keys/robot1.key_secret", server_public_file="keys/server.key")`. Traffic is
encrypted and each side authenticates the other. An unauthenticated client fails the handshake: the
server logs it and never sees a message, the client raises `AuthError`.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger(__name__)

__all__ = [
    "AuthError",
    "CurveConfig",
    "generate_keypair",
    "load_public_key",
    "allow_client",
    "add_curve_arguments",
    "curve_from_args",
]


class AuthError(RuntimeError):
    """The CURVE handshake failed: wrong or unknown key, or one side without CURVE.

    (A RuntimeError, so the `robo` CLI reports it as one line.)"""


@dataclass(frozen=True)
class CurveConfig:
    """CURVE settings of one side.

    Args:
        secret_file: this side's `<name>.key_secret`.
        server_public_file: client only: the server's `<name>.key`.
        allow_dir: server only: directory of allowed clients' public `*.key` files.
    """

    secret_file: Path
    server_public_file: Path | None = None
    allow_dir: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "secret_file", Path(self.secret_file))
        if self.server_public_file is not None:
            object.__setattr__(self, "server_public_file", Path(self.server_public_file))
        if self.allow_dir is not None:
            object.__setattr__(self, "allow_dir", Path(self.allow_dir))
        if not zmq.has("curve"):
            raise ValueError("CurveConfig: this libzmq was built without CURVE support")
        if not self.secret_file.is_file():
            raise ValueError(f"CurveConfig.secret_file: {self.secret_file} does not exist")
        if self.server_public_file is not None and not self.server_public_file.is_file():
            raise ValueError(f"CurveConfig.server_public_file: {self.server_public_file} does not exist")
        if self.allow_dir is not None and not self.allow_dir.is_dir():
            raise ValueError(f"CurveConfig.allow_dir: {self.allow_dir} is not a directory")

    def keypair(self) -> tuple[bytes, bytes]:
        public, secret = zmq.auth.load_certificate(self.secret_file)
        if not secret:
            raise ValueError(f"{self.secret_file} holds no secret key (use the .key_secret file)")
        return public, secret

    def apply_server(self, sock: zmq.Socket) -> None:
        if self.allow_dir is None:
            raise ValueError("CurveConfig for a server needs allow_dir (the clients' public keys)")
        public, secret = self.keypair()
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True

    def apply_client(self, sock: zmq.Socket) -> None:
        if self.server_public_file is None:
            raise ValueError("CurveConfig for a client needs server_public_file (the server's .key)")
        public, secret = self.keypair()
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_serverkey = load_public_key(self.server_public_file)

    def start_authenticator(self, ctx: zmq.Context) -> ThreadAuthenticator:
        """Start the ZAP handler of `ctx` that checks clients against `allow_dir`."""
        auth = ThreadAuthenticator(ctx, log=logging.getLogger("robo.transport.zap"))
        auth.start()
        auth.configure_curve(domain="*", location=str(self.allow_dir))
        n = len(list(Path(self.allow_dir).glob("*.key")))  # type: ignore[arg-type]
        log.info("CURVE on: %d allowed client key(s) in %s", n, self.allow_dir)
        return auth


def generate_keypair(key_dir: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """Write `<name>.key` (public) and `<name>.key_secret` (0600) into `key_dir`; refuses to overwrite."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"key name {name!r} must be a plain file name")
    key_dir = Path(key_dir)
    key_dir.mkdir(parents=True, exist_ok=True)
    public, secret = key_dir / f"{name}.key", key_dir / f"{name}.key_secret"
    for p in (public, secret):
        if p.exists():
            raise FileExistsError(f"{p} exists; remove it first or choose another --name")
    pub_s, sec_s = zmq.auth.create_certificates(key_dir, name)
    os.chmod(sec_s, 0o600)
    return Path(pub_s), Path(sec_s)


def load_public_key(path: str | os.PathLike) -> bytes:
    """The Z85 public key in a `.key` or `.key_secret` file; `ValueError` if it holds none."""
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a CURVE key file ({e})") from None
    if not public or len(public) != 40:
        raise ValueError(f"{path}: not a CURVE key file")
    return public


def allow_client(allow_dir: str | os.PathLike, public_file: str | os.PathLike) -> Path:
    """Copy a client's public key file into a server's allow-list directory (validated first)."""
    load_public_key(public_file)
    src = Path(public_file)
    if src.name.endswith(".key_secret"):
        raise ValueError(f"{src} is a secret key; copy the public '.key' file only")
    allow_dir = Path(allow_dir)
    allow_dir.mkdir(parents=True, exist_ok=True)
    dst = allow_dir / src.name
    shutil.copyfile(src, dst)
    return dst


# ----------------------------------------------------------------------------------------- CLI glue
def add_curve_arguments(parser: Any, role: str) -> None:
    """Add `--curve-secret` and, for role "server", `--curve-allow`, for role "client", `--curve-server`."""
    group = parser.add_argument_group("CurveZMQ authentication (off unless --curve-secret is given)")
    group.add_argument("--curve-secret", type=Path, default=None, help="this side's <name>.key_secret file")
    if role in ("server", "both"):
        group.add_argument(
            "--curve-allow", type=Path, default=None, help="directory of allowed clients' public .key files"
        )
    if role in ("client", "both"):
        group.add_argument("--curve-server", type=Path, default=None, help="the server's public <name>.key file")


def curve_from_args(args: Any, role: str) -> CurveConfig | None:
    """The `CurveConfig` described by `add_curve_arguments` flags, or None when CURVE is off."""
    secret = getattr(args, "curve_secret", None)
    if secret is None:
        return None
    if role == "server":
        if getattr(args, "curve_allow", None) is None:
            raise ValueError("--curve-secret on a server needs --curve-allow DIR (allowed client keys)")
        return CurveConfig(secret, allow_dir=args.curve_allow)
    if getattr(args, "curve_server", None) is None:
        raise ValueError("--curve-secret on a client needs --curve-server FILE (the server's public key)")
    return CurveConfig(secret, server_public_file=args.curve_server)
