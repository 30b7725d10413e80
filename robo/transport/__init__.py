"""robo.transport: typed, authenticated, zero-copy messages over ZMQ (no pickle on the wire).

- `codec`: msgpack header + raw array frames (JPEG for colour images, optional), schema version.
- `channels`: RPC (ROUTER/DEALER with retries and reconnect), PUB/SUB (latest-only), heartbeats.
- `auth`: CurveZMQ key files and allow-lists (`robo keys`).
"""

from robo.transport.auth import AuthError, CurveConfig, allow_client, generate_keypair
from robo.transport.channels import (
    Heartbeat,
    PeerTimeout,
    Publisher,
    RemoteError,
    Request,
    RpcClient,
    RpcServer,
    Subscriber,
)
from robo.transport.codec import (
    SCHEMA_VERSION,
    ArraySchema,
    DecodeLimits,
    Message,
    MessageError,
    SchemaVersionError,
    decode,
    encode,
)

__all__ = [
    "SCHEMA_VERSION",
    "ArraySchema",
    "AuthError",
    "CurveConfig",
    "DecodeLimits",
    "Heartbeat",
    "Message",
    "MessageError",
    "PeerTimeout",
    "Publisher",
    "RemoteError",
    "Request",
    "RpcClient",
    "RpcServer",
    "SchemaVersionError",
    "Subscriber",
    "allow_client",
    "decode",
    "encode",
    "generate_keypair",
]
