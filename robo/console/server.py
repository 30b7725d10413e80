"""The operator console's web server: a page served by robo on its own thread and event loop.

    server = ConsoleServer(hub=hub, host="127.0.0.1", port=0).start()    # live session (robo.console.hub)
    server = ConsoleServer(dataset="runs/hil/x/dataset").start()           # browse a recorded dataset
    print(server.url)                  # http://127.0.0.1:<port>/ (with ?token=... on a non-local bind)
    server.stop()

Framework: aiohttp. It is one well-kept package (aio-libs) that is both the HTTP server and the
WebSocket endpoint, and it runs on an asyncio loop we own: `AppRunner` + `TCPSite` start on a thread of
our own with no signal handlers and no process-wide state, so the session's main thread (its
Ctrl-C / SIGTERM handling, the control loop) is untouched. Starlette would need uvicorn beside it, whose
server wants the main thread's signals.

Access: a loopback bind (127.0.0.0/8, ::1, localhost) is open to the machine's own users; any other
bind needs the token printed at start (`?token=`, then a cookie; WebSockets carry it too): without it
every request, page and WebSocket alike, is refused with 403. Either way a request whose Origin is
another site (another page in the operator's browser opening the WebSocket) is refused, and a loopback
console answers only to a loopback Host name (no DNS rebinding).

Live protocol (`/ws`): on connect the page gets the state snapshot and the recent history, then, at
the session's rate, a JSON `state` message when the state changed and one binary message per camera
frame (4-byte big-endian header length, a JSON header {cam, seq, t_capture, t_send, age_ms}, JPEG bytes).
Each page has its own sender that always takes the latest frame: a slow page gets fewer frames, never
a queue. The page sends `{"type": "press", "key": k}` (a control's key: ConsoleHub.press) and pings to
measure its round trip (the frame age it shows = age at send + half the round trip + its own delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import secrets
import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ConsoleServer", "is_loopback", "parse_bind", "encode_jpeg"]

COOKIE = "robo_console_token"
DEFAULT_PORT = 8765


def parse_bind(text: str | None) -> tuple[str, int]:
    """`host:port`, `host`, `:port` or `port` -> (host, port); defaults 127.0.0.1 and 8765 (0: any free port)."""
    text = (text or "").strip()
    if not text:
        return "127.0.0.1", DEFAULT_PORT
    if text.isdigit():
        return "127.0.0.1", int(text)
    if text.startswith("["):  # [::1]:8765
        host, _, port = text[1:].partition("]")
        return host, int(port.lstrip(":") or DEFAULT_PORT)
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, DEFAULT_PORT
    if not port.isdigit():
        raise ValueError(f"--console {text!r}: the port must be a number (host:port)")
    return host or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    """True for binds only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """An RGB (H, W, 3) uint8 image (or (H, W) grey) as JPEG bytes."""
    import cv2

    img = np.ascontiguousarray(image)
    if img.ndim == 3 and img.shape[2] == 3:
        img = np.ascontiguousarray(img[..., ::-1])  # RGB -> BGR
    ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError(f"cannot JPEG-encode an image of shape {image.shape}")
    return buf.tobytes()


class ConsoleServer:
    """The console's web server on its own thread (see the module docstring)."""

    def __init__(self, hub: Any = None, *, dataset: str | Path | None = None, host: str = "127.0.0.1",
                 port: int = 0, token: str | None = None, health_period_s: float = 0.5) -> None:
        """`hub`: a live session's ConsoleHub; `dataset`: a dataset folder to browse (one of the two).
        `token`: the access token of a non-local bind (default: a fresh random one)."""
        if (hub is None) == (dataset is None):
            raise ValueError("ConsoleServer needs exactly one of hub= (a live session) or dataset= (a folder)")
        self.hub = hub
        self.browser = None
        if dataset is not None:
            from robo.console.dataset import DatasetBrowser

            self.browser = DatasetBrowser(dataset)
        self.host, self.port = host, int(port)
        self.token = None if is_loopback(host) else (token or secrets.token_urlsafe(18))
        self.health_period_s = float(health_period_s)
        self.n_clients = 0
        self.n_refused = 0
        self.n_frames_sent = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._jpeg_seq = -1
        self._jpegs: dict[str, bytes] = {}
        self._jpeg_lock: asyncio.Lock | None = None
        self._sockets: set[Any] = set()

    # ------------------------------------------------------------------ life cycle
    @property
    def url(self) -> str:
        """The page's address (with the token when one is needed)."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else _outward_ip()
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def start(self, timeout_s: float = 15.0) -> ConsoleServer:
        """Serve on a daemon thread; returns once the port is bound (raises what binding raised)."""
        self._thread = threading.Thread(target=self._run, name="robo-console", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"the console did not start within {timeout_s:g} s")
        if self._error is not None:
            raise RuntimeError(f"the console cannot serve on {self.host}:{self.port}: {self._error}") from self._error
        if self.hub is not None:
            self.hub.server = self
        return self

    def stop(self) -> None:
        """Stop serving (pages see the socket close; the session goes on)."""
        if self.hub is not None and self.hub.server is self:
            self.hub.server = None
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and loop.is_running():
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - reported by start()
            self._error = e
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        from aiohttp import web

        self._stopping = asyncio.Event()
        self._jpeg_lock = asyncio.Lock()
        app = web.Application(middlewares=[self._auth])
        if self.hub is not None:
            app.router.add_get("/", self._live_page)
            app.router.add_get("/ws", self._ws)
            app.router.add_get("/api/state", self._state)
        else:
            assert self.browser is not None
            app.router.add_get("/", self._dataset_page)
            self.browser.add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        health = asyncio.ensure_future(self._poll_health()) if self.hub is not None else None
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            if health is not None:
                health.cancel()
            for ws in list(self._sockets):  # pages see the close at once (then they try to reconnect)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(code=1001, message=b"the session ended"), 1.0)
            await self._runner.cleanup()

    # ------------------------------------------------------------------ access
    def _authorised(self, request: Any) -> tuple[bool, bool]:
        """(allowed, the token came in the query: set the cookie)."""
        if self.token is None:
            return True, False
        given = request.query.get("token")
        if given is not None and secrets.compare_digest(given, self.token):
            return True, True
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and secrets.compare_digest(cookie, self.token), False

    def _foreign(self, request: Any) -> str:
        """Why a request comes from somewhere else than this console's own page ("" when it does not): a
        WebSocket opened by another site's page (its Origin is not this host: a browser lets any page try),
        or, on a loopback bind (no token), a Host that is not a loopback name (DNS rebinding)."""
        host = request.host or ""
        if self.token is None:
            name = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") else host[1:].split("]")[0]
            if not is_loopback(name):
                return f"a loopback console answers only to localhost, not to Host {host!r}"
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1].rstrip("/") != host:
            return f"requests from another site's page ({origin}) are refused"
        return ""

    @property
    def _auth(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def auth(request: Any, handler: Any) -> Any:
            why = self._foreign(request)
            if why:
                self.n_refused += 1
                return web.Response(status=403, text=f"403: {why}\n")
            ok, from_query = self._authorised(request)
            if not ok:
                self.n_refused += 1
                return web.Response(status=403, text="403: this console needs its token (printed when it started): "
                                                     "open the URL with ?token=...\n")
            response = await handler(request)
            if from_query and isinstance(response, web.Response):
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
            return response

        return auth

    # ------------------------------------------------------------------ live
    async def _live_page(self, request: Any) -> Any:
        from aiohttp import web

        from robo.console.page import LIVE_PAGE

        return web.Response(text=LIVE_PAGE, content_type="text/html")

    async def _state(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(self.hub.snapshot())

    async def _poll_health(self) -> None:
        """The controller's health, read off the control loop (a worker thread), every `health_period_s`."""
        loop = asyncio.get_running_loop()
        while True:
            fn = self.hub.health_fn
            if fn is not None:
                try:
                    health = await loop.run_in_executor(None, fn)
                    self.hub.publish({"health": health})
                except Exception as e:  # noqa: BLE001 - health is advisory: show the error, keep serving
                    self.hub.publish({"health": {"error": " ".join(str(e).split())}})
            await asyncio.sleep(self.health_period_s)

    async def _encoded(self, seq: int, images: Any) -> dict[str, bytes]:
        """The JPEGs of frame set `seq`, encoded once for every page (on a worker thread)."""
        assert self._jpeg_lock is not None
        async with self._jpeg_lock:
            if seq != self._jpeg_seq:
                loop = asyncio.get_running_loop()
                items = list(images.items())
                jpegs = await loop.run_in_executor(None, lambda: {k: encode_jpeg(v) for k, v in items})
                self._jpeg_seq, self._jpegs = seq, jpegs
            return self._jpegs

    async def _ws(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=1 << 16)
        await ws.prepare(request)
        self.n_clients += 1
        self._sockets.add(ws)
        hub = self.hub
        sender = asyncio.ensure_future(self._send_loop(ws))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                kind = data.get("type")
                if kind == "press":
                    key = str(data.get("key", ""))
                    ok = hub.press(key)
                    await ws.send_json({"type": "ack", "key": key, "ok": ok})
                elif kind == "ping":
                    await ws.send_json({"type": "pong", "t": data.get("t"), "server_t": time.time()})
        except (ConnectionError, asyncio.CancelledError):
            pass  # a dropped page: the session goes on
        finally:
            sender.cancel()
            self.n_clients -= 1
            self._sockets.discard(ws)
        return ws

    async def _send_loop(self, ws: Any) -> None:
        hub = self.hub
        try:
            await ws.send_json(hub.snapshot())
            await ws.send_json({"type": "history", "samples": hub.history()})
            state_seq, frame_seq = hub.state_seq, -1
            while not ws.closed:
                if hub.state_seq != state_seq:
                    state_seq = hub.state_seq
                    await ws.send_json(hub.snapshot())
                seq, images, t_capture = hub.frames()
                if seq != frame_seq and images:
                    frame_seq = seq
                    for cam, jpeg in (await self._encoded(seq, images)).items():
                        t_send = time.time()
                        head = json.dumps({"cam": cam, "seq": seq, "t_capture": t_capture, "t_send": t_send,
                                           "age_ms": 1e3 * (t_send - t_capture)}).encode()
                        await ws.send_bytes(struct.pack(">I", len(head)) + head + jpeg)
                        self.n_frames_sent += 1
                await asyncio.sleep(0.01)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass  # the page went away mid-send

    # ------------------------------------------------------------------ dataset
    async def _dataset_page(self, request: Any) -> Any:
        from aiohttp import web

        from robo.console.page import DATASET_PAGE

        return web.Response(text=DATASET_PAGE, content_type="text/html")


def _outward_ip() -> str:
    """This machine's address on its default route (for the URL of a 0.0.0.0 bind), else 127.0.0.1."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
        return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()
