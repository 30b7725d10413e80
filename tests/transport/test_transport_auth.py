"""CurveZMQ: `robo keys`, allow-lists, refused clients get AuthError, the server keeps serving."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from transport_helpers import wait_for

from robo.cli import main as robo_main
from robo.transport import AuthError, CurveConfig, Publisher, RpcClient, RpcServer, Subscriber
from robo.transport.auth import load_public_key

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    for name in ("server", "robot1", "intruder"):
        assert robo_main(["keys", "generate", "--dir", str(d), "--name", name]) == 0
    assert robo_main(["keys", "allow", "--dir", str(d / "allowed"), str(d / "robot1.key")]) == 0
    return d


def test_keys_cli_writes_key_pairs_with_private_secret(keys, capsys):
    assert (keys / "server.key").is_file() and (keys / "server.key_secret").is_file()
    assert stat.S_IMODE(os.stat(keys / "server.key_secret").st_mode) == 0o600
    assert len(load_public_key(keys / "robot1.key")) == 40
    assert sorted(p.name for p in (keys / "allowed").iterdir()) == ["robot1.key"]
    capsys.readouterr()
    assert robo_main(["keys", "show", str(keys / "robot1.key")]) == 0
    assert capsys.readouterr().out.strip() == load_public_key(keys / "robot1.key").decode()
    # refuses to overwrite, and refuses to put a secret key in an allow-list
    assert robo_main(["keys", "generate", "--dir", str(keys), "--name", "server"]) == 1
    assert robo_main(["keys", "allow", "--dir", str(keys / "allowed"), str(keys / "robot1.key_secret")]) == 1


def serve_in_thread(server, stop):
    import threading

    def loop():
        while not stop.is_set():
            req = server.recv(0.05)
            if req is not None:
                server.reply(req, "act", req.msg.arrays, {"ok": True})

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def test_curve_allows_listed_client_and_refuses_others(keys):
    import threading

    server = RpcServer(
        "tcp://127.0.0.1:*", name="gpu", curve=CurveConfig(keys / "server.key_secret", allow_dir=keys / "allowed")
    )
    stop = threading.Event()
    t = serve_in_thread(server, stop)
    try:
        good = RpcClient(
            server.endpoint,
            name="robot1",
            curve=CurveConfig(keys / "robot1.key_secret", server_public_file=keys / "server.key"),
        )
        msg = good.call("act_request", {"x": np.arange(3.0)})
        assert msg.meta == {"ok": True}
        np.testing.assert_array_equal(msg.arrays["x"], [0, 1, 2])

        intruder = RpcClient(
            server.endpoint,
            name="intruder",
            timeout_s=1.0,
            curve=CurveConfig(keys / "intruder.key_secret", server_public_file=keys / "server.key"),
        )
        with pytest.raises(AuthError, match="not in the server's allow-list"):
            intruder.call("act_request", {"x": np.arange(3.0)})
        intruder.close()

        plain = RpcClient(server.endpoint, name="plain", timeout_s=1.0)  # no CURVE at all
        with pytest.raises(AuthError, match="handshake failed"):
            plain.call("act_request", {"x": np.arange(3.0)})
        plain.close()

        wrong_server_key = RpcClient(
            server.endpoint,
            name="mitm",
            timeout_s=1.0,
            retries=0,
            curve=CurveConfig(keys / "robot1.key_secret", server_public_file=keys / "intruder.key"),
        )
        with pytest.raises(AuthError):
            wrong_server_key.call("act_request", {"x": np.arange(3.0)})
        wrong_server_key.close()

        # the refused peers never reached the application; the allowed client is still served
        assert server.stats.n_requests == 1
        wait_for(lambda: server.stats.n_auth_failures >= 2, 5, "server logged refusals")
        assert good.call("act_request", {"x": np.ones(1)}).meta == {"ok": True}
        assert server.stats.n_requests == 2
        good.close()
    finally:
        stop.set()
        t.join(5)
        server.close()


def test_curve_pubsub(keys):
    pub = Publisher(
        "tcp://127.0.0.1:*", name="learner", curve=CurveConfig(keys / "server.key_secret", allow_dir=keys / "allowed")
    )
    ok = Subscriber(
        pub.endpoint,
        name="actor",
        curve=CurveConfig(keys / "robot1.key_secret", server_public_file=keys / "server.key"),
    )
    bad = Subscriber(
        pub.endpoint,
        name="eavesdropper",
        curve=CurveConfig(keys / "intruder.key_secret", server_public_file=keys / "server.key"),
    )
    try:
        got = None
        for _ in range(100):
            pub.publish("weights", {"w": np.ones(4)}, {"version": 1})
            got = ok.latest(0.05)
            if got is not None:
                break
        assert got is not None and got.meta["version"] == 1
        wait_for(lambda: bad.error is not None, 5, "eavesdropper refused")
        with pytest.raises(AuthError):
            bad.latest(0.0)
    finally:
        ok.close()
        bad.close()
        pub.close()


def test_curve_config_validates_paths(tmp_path, keys):
    with pytest.raises(ValueError, match="does not exist"):
        CurveConfig(tmp_path / "missing.key_secret")
    with pytest.raises(ValueError, match="allow_dir"):
        CurveConfig(keys / "server.key_secret", allow_dir=tmp_path / "nope")
    cfg = CurveConfig(keys / "server.key")  # a public key file cannot act as a secret
    with pytest.raises(ValueError, match="no secret key"):
        cfg.keypair()
