"""The console's access rule, its publisher's cost, its event path and attaching to a running session
(no sim: a hub fed by the test, pages in headless Chromium)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from robo.console import INTERVENE_CONTROLS, ConsoleHub
from robo.console.server import ConsoleServer, _outward_ip, is_loopback, parse_bind


class Keys:
    """A stand-in for the session's TerminalKeys: records injected keys."""

    def __init__(self) -> None:
        self.injected: list[str] = []

    def inject(self, key: str) -> None:
        self.injected.append(key)


def status(url: str | urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def ws_status(url: str, headers: dict | None = None) -> int:
    """The HTTP status of a WebSocket handshake at `url` (101 when it opened)."""
    import aiohttp

    async def go() -> int:
        async with aiohttp.ClientSession() as s:
            try:
                async with s.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=2), headers=headers):
                    return 101
            except aiohttp.WSServerHandshakeError as e:
                return e.status

    out: list[int] = []  # on a thread of its own: playwright's sync API holds this thread's event loop
    t = threading.Thread(target=lambda: out.append(asyncio.run(go())))
    t.start()
    t.join(10)
    return out[0]


@pytest.fixture
def feeding():
    """A hub fed at 20 Hz with a changing 32 px frame, as a session loop would (stops at teardown)."""
    hub = ConsoleHub("intervene", keys=Keys(), controls=INTERVENE_CONTROLS, name="fed")
    stop = threading.Event()

    def loop() -> None:
        i = 0
        while not stop.is_set():
            hub.publish({"phase": "autonomous", "episode": 1, "step": i, "state": [float(np.sin(i / 5))]},
                        {"cam": np.full((32, 32, 3), i % 250, np.uint8)}, t_capture=time.time())
            i += 1
            time.sleep(0.05)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield hub
    stop.set()
    t.join(2)


def test_bind_parsing_and_what_counts_as_local():
    assert parse_bind(None) == ("127.0.0.1", 8765) and parse_bind("0.0.0.0:0") == ("0.0.0.0", 0)
    assert parse_bind("9000") == ("127.0.0.1", 9000) and parse_bind("[::1]:7") == ("::1", 7)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    with pytest.raises(ValueError, match="port"):
        parse_bind("host:http")


def test_a_non_local_bind_refuses_requests_without_its_token(browser, feeding):
    server = ConsoleServer(feeding, host="0.0.0.0", port=0).start()
    try:
        assert server.token and len(server.token) >= 20 and f"?token={server.token}" in server.url
        ips = {"127.0.0.1", _outward_ip()}  # a 0.0.0.0 bind: the rule holds whichever address is used
        for ip in ips:
            base = f"http://{ip}:{server.port}"
            assert status(base + "/") == 403 and status(base + "/api/state") == 403
            assert status(base + "/?token=wrong") == 403
            assert status(f"{base}/api/state?token={server.token}") == 200
            assert ws_status(f"ws://{ip}:{server.port}/ws") == 403
            assert ws_status(f"ws://{ip}:{server.port}/ws?token={server.token}") == 101
        page = browser.new_page()
        try:
            assert page.goto(f"http://{_outward_ip()}:{server.port}/").status == 403
            assert page.goto(server.url).status == 200  # the printed URL carries the token (then a cookie)
            page.wait_for_function("window.consoleStats.frames >= 2", timeout=10000)
            assert page.text_content("#conn") == "live"
        finally:
            page.close()
        assert server.n_refused >= 5
    finally:
        server.stop()


def test_a_local_bind_needs_no_token_but_refuses_other_sites(feeding):
    server = ConsoleServer(feeding, host="127.0.0.1", port=0).start()
    try:
        assert server.token is None and "token" not in server.url
        assert status(server.url) == 200 and status(server.url + "api/state") == 200
        ws = f"ws://127.0.0.1:{server.port}/ws"
        assert ws_status(ws, {"Origin": f"http://127.0.0.1:{server.port}"}) == 101  # the console's own page
        assert ws_status(ws, {"Origin": "http://evil.example"}) == 403  # another page in the same browser
        req = urllib.request.Request(server.url + "api/state", headers={"Host": f"evil.example:{server.port}"})
        assert status(req) == 403  # DNS rebinding: a foreign name resolving to 127.0.0.1
    finally:
        server.stop()


def test_publishing_is_cheap_and_a_slow_page_drops_frames_instead_of_queueing(browser, feeding):
    server = ConsoleServer(feeding, host="127.0.0.1", port=0).start()
    page = browser.new_page()
    try:
        page.goto(server.url)
        page.wait_for_function("window.consoleStats.frames >= 2", timeout=10000)
        img = {"cam": np.zeros((480, 640, 3), np.uint8)}  # a VGA frame: encoding it is the console's job, not ours
        costs = []
        for i in range(2000):  # far faster than any page takes frames
            t0 = time.perf_counter()
            feeding.publish({"step": i}, img, t_capture=time.time())
            costs.append(time.perf_counter() - t0)
        assert np.percentile(costs, 99) < 2e-3, np.percentile(costs, 99)  # a swap under a lock (load: a GIL switch)
        time.sleep(0.3)
        assert server.n_frames_sent < feeding.seq  # the page got the latest frames, the rest were dropped
    finally:
        page.close()
        server.stop()
    idle = ConsoleHub("run")  # no console serving: publish returns at once
    t0 = time.perf_counter()
    for i in range(10000):
        idle.publish({"step": i}, img)
    assert (time.perf_counter() - t0) / 10000 < 2e-5 and idle.seq == 0


def test_only_the_sessions_controls_reach_its_keys():
    keys = Keys()
    hub = ConsoleHub("intervene", keys=keys, controls=INTERVENE_CONTROLS)
    assert hub.press("t") and hub.press("q")
    assert not hub.press("w") and not hub.press("enter")  # a motion key or another session's key: refused
    assert keys.injected == ["t", "q"] and hub.n_events == 2


ATTACHABLE = """
import sys, time
from robo.console import RUN_CONTROLS, ConsoleHub
from robo.console.cli import console_session
hub = ConsoleHub("run", controls=RUN_CONTROLS, name="attachme")
with console_session(hub, None, lambda text: print(text, flush=True)):
    print("ready", flush=True)
    for i in range(1200):
        hub.publish({"phase": "autonomous", "step": i})
        time.sleep(0.05)
"""


def test_attach_starts_the_console_of_a_running_session(runtime_dir):
    from robo.console.cli import attach, running_sessions

    env = {**os.environ, "ROBO_RUNTIME_DIR": str(runtime_dir)}
    proc = subprocess.Popen([sys.executable, "-c", ATTACHABLE], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert [r["name"] for r in running_sessions()] == ["attachme"]
        assert running_sessions()[0]["url"] is None  # started without --console
        url = attach("attachme", "127.0.0.1:0")
        assert url.startswith("http://127.0.0.1:") and attach(str(proc.pid)) == url  # by name or pid
        deadline = time.monotonic() + 5.0
        while True:  # the session's next control period after the console started fills its state
            with urllib.request.urlopen(url + "api/state", timeout=5) as r:
                body = json.loads(r.read())
            if "step" in body["state"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert body["mode"] == "run" and body["state"]["step"] > 0
        assert proc.poll() is None  # the session runs on
        with pytest.raises(ValueError, match="no running session"):
            attach("nobody")
    finally:
        proc.terminate()
        proc.wait(10)
