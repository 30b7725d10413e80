"""Sockets and channels over ZMQ: RPC (ROUTER/DEALER), broadcast (PUB/SUB), heartbeats.

    server = RpcServer("tcp://*:5555", name="policy-server")          # binds
    req = server.recv(timeout_s=0.1)                                  # Request | None
    server.reply(req, "act", {"action": chunk})
    client = RpcClient("tcp://gpu-box:5555", name="robot1")          # connects
    msg = client.call("act_request", obs)                             # Message (raises on error)

    pub = Publisher("tcp://*:5556", name="learner")                   # e.g. versioned weights
    sub = Subscriber("tcp://gpu-box:5556", name="actor0")             # drained by a thread
    msg = sub.latest(timeout_s=0.0)                                   # newest unseen message or None

Every socket has high-water marks (`hwm`, messages) so a slow peer never grows memory without
bound: a ROUTER or PUB drops messages for a peer whose queue is full, a client never blocks on send
(it times out and reconnects instead). Clients follow the "lazy pirate" pattern: on a timeout they
close the socket (discarding queued messages), reconnect and resend, so a restarted server is picked
up transparently; late replies to abandoned requests are recognised by `seq` and ignored.

Servers never die on bad input: a malformed message is logged and dropped (`stats.n_malformed`); a
peer speaking another schema version gets an "error" reply with code "schema_version" and is dropped.
With CURVE on (see `robo.transport.auth`), a client whose key is not allowed fails the handshake: the
server logs it (`stats.n_auth_failures`) and never sees its messages; the client raises `AuthError`.

Liveness: `RpcServer.peers` records when each sender was last heard from; senders silent for longer
than `peer_timeout_s` are forgotten (`on_peer_lost`). Clients ping with "heartbeat" messages
(`RpcClient.ping`, or a background `Heartbeat`), which the server answers itself with its `info`.
"""

from robo.transport._sockets import DEFAULT_HWM, PeerTimeout, RemoteError
from robo.transport.pubsub import Publisher, Subscriber
from robo.transport.rpc import Heartbeat, PeerTable, Request, RpcClient, RpcServer, ServerStats

__all__ = [
    "DEFAULT_HWM",
    "PeerTimeout",
    "RemoteError",
    "PeerTable",
    "Request",
    "RpcServer",
    "RpcClient",
    "ServerStats",
    "Publisher",
    "Subscriber",
    "Heartbeat",
]
