"""The console on a real `robo intervene` session (sim cell, keyboard teleop, one 64 px camera), driven
in headless Chromium: frames, buttons + terminal keys on one event queue, reload, stop = hold, and the
dataset browser on what the session recorded. The tests run in order on one session."""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from console_helpers import LIFT, Lines

from robo.cells import CellEnv

SHOTS = os.environ.get("ROBO_CONSOLE_SCREENSHOTS")  # a folder: also save the README's screenshots there

FRAME_HASH = """() => { const img = document.querySelector('#cameras img'); if (!img || !img.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const x = c.getContext('2d'); x.drawImage(img, 0, 0); const d = x.getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) % 1000000007; return [+img.dataset.seq, h]; }"""


class Session:
    def __init__(self, url: str, out: Path, pipe_w: int, thread: threading.Thread, result: dict, closed: list,
                 stream: Lines) -> None:
        self.url, self.out, self.pipe_w, self.thread = url, out, pipe_w, thread
        self.result, self.closed, self.stream = result, closed, stream

    def state(self) -> dict:
        with urllib.request.urlopen(self.url + "api/state", timeout=5) as r:
            return json.loads(r.read())["state"]


@pytest.fixture(scope="module")
def session(console_cell, drift_policy, tmp_path_factory, runtime_dir):
    from robo.hil.session import add_arguments, intervene
    from robo.teleop.terminal import TerminalKeys

    out = tmp_path_factory.mktemp("hil") / "session"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--cell", str(console_cell), "--policy", str(drift_policy), "--task", LIFT,
                              "--teleop", "keyboard", "--episodes", "50", "--out", str(out),
                              "--console", "127.0.0.1:0"])
    r, w = os.pipe()
    keys = TerminalKeys(r)
    stream = Lines()
    closed: list[dict] = []
    real_close = CellEnv.close

    def close(self):  # the controller's own state when the session's env closed
        real_close(self)
        closed.append(dict(self.final_controller))

    CellEnv.close = close  # type: ignore[method-assign]
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(code=intervene(args, keys=keys, stream=stream)))
    thread.start()
    try:
        url = stream.wait_for(r"console: (http://\S+)", 90).group(1)
        yield Session(url, out, w, thread, result, closed, stream)
    finally:
        if thread.is_alive():
            os.write(w, b"q")
            thread.join(60)
        CellEnv.close = real_close  # type: ignore[method-assign]
        keys.stop()
        os.close(w)


@pytest.fixture(scope="module")
def page(browser, session):
    pg = browser.new_page()
    pg.goto(session.url)
    yield pg
    pg.close()


def wait_early_in_episode(session: Session, max_step: int = 12, timeout_s: float = 20.0) -> None:
    """Until the episode (50 steps) has just begun, so a few clicks land in the same one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        s = session.state()
        if s.get("phase") == "autonomous" and 0 < int(s.get("step", 99)) <= max_step:
            return
        time.sleep(0.05)
    raise AssertionError(f"no fresh episode within {timeout_s} s: {session.state()}")


def test_the_page_shows_camera_frames_that_change_with_their_age(page, session):
    page.wait_for_function("window.consoleStats.frames >= 3", timeout=30000)
    first = page.evaluate(FRAME_HASH)
    page.wait_for_function(f"window.consoleStats.frames >= {page.evaluate('window.consoleStats.frames') + 12}",
                           timeout=15000)
    later = page.evaluate(FRAME_HASH)
    assert first is not None and later is not None
    assert later[0] > first[0] and later[1] != first[1]  # newer frames, different pixels (the arm drifts up)
    assert page.eval_on_selector("#cameras img", "i => [i.naturalWidth, i.naturalHeight]") == [64, 64]
    age = page.evaluate("window.consoleStats.last_age_ms")
    assert 0 < age < 1000, age
    assert re.fullmatch(r"age \d+ ms", page.text_content("#age-front"))
    assert page.evaluate("window.consoleStats.plotted_state") > 3  # the arm state plot has samples
    health = page.text_content("#health")
    assert "held" in health and "lateness us p99" in health and "watchdog trips" in health


def test_buttons_and_terminal_keys_drive_the_session_phase_and_it_is_recorded(page, session):
    wait_early_in_episode(session)
    page.click("#btn-takeover")
    page.wait_for_function("document.getElementById('phase').textContent === 'recovery'", timeout=5000)
    assert page.text_content("#interventions").startswith("1")
    page.click("#btn-correct")
    page.wait_for_function("document.getElementById('phase').textContent === 'correction'", timeout=5000)
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "console_live.png"), full_page=True)
    episode = session.state()["episode"]
    page.keyboard.press("h")  # the page's shortcut: hand back (rac: the correction ends the episode)
    page.wait_for_function(f"document.getElementById('episode').textContent.startsWith('{episode + 1}/')",
                           timeout=5000)
    assert page.evaluate("window.consoleStats.acks.map(a => [a.key, a.ok])") == [["t", True], ["c", True], ["h", True]]
    # the terminal and the page at once: p from the terminal pauses, the page's button resumes
    wait_early_in_episode(session)
    os.write(session.pipe_w, b"p")
    page.wait_for_function("document.getElementById('phase').textContent === 'paused'", timeout=5000)
    assert session.state()["source"] == "hold"
    page.click("#btn-pause")
    page.wait_for_function("document.getElementById('phase').textContent === 'autonomous'", timeout=5000)
    session.marked_episode = episode  # type: ignore[attr-defined]


def test_a_reload_mid_session_shows_the_current_state_again(page, session):
    page.reload()
    page.wait_for_function("window.consoleStats.frames >= 2 && window.consoleStats.states >= 1", timeout=15000)
    state = session.state()
    shown = page.text_content("#episode")
    assert shown.split("/")[0] in (str(state["episode"]), str(state["episode"] - 1)), (shown, state)
    assert page.text_content("#phase") in ("autonomous", "paused", "recovery", "correction")
    assert page.evaluate("window.consoleStats.plotted_state") > 10  # the history came back with the state
    assert page.evaluate("window.consoleStats.connects") == 1 and page.text_content("#conn") == "live"


def test_a_dropped_page_does_not_stop_the_session(browser, session):
    before = session.state()["t"]
    other = browser.new_page()
    other.goto(session.url)
    other.wait_for_function("window.consoleStats.frames >= 1", timeout=15000)
    other.close()  # the WebSocket drops mid-stream
    time.sleep(0.5)
    assert session.thread.is_alive() and session.state()["t"] > before


def test_stop_from_the_page_ends_the_session_in_a_controller_hold(page, session):
    page.click("#btn-quit")
    session.thread.join(30)
    assert not session.thread.is_alive()
    assert session.result["code"] == 0
    report = json.loads((session.out / "session.json").read_text())
    assert report["ended"] == "quit by the operator"
    assert session.closed and session.closed[-1]["hold_confirmed"] and session.closed[-1]["held"]
    marked = [e for e in report["episodes"] if e["history"] == ["autonomous", "recovery", "correction"]]
    assert marked and marked[0]["ended_by"] == "operator" and marked[0]["interventions"] == 1
    paused = [e for e in report["episodes"] if e["history"] == ["autonomous", "paused", "autonomous"]]
    assert paused, [e["history"] for e in report["episodes"]]
    page.wait_for_function("document.getElementById('conn').textContent === 'reconnecting'", timeout=5000)


def test_the_dataset_browser_shows_the_segment_timeline(browser, session):
    from robo.console.server import ConsoleServer
    from robo.data import Dataset

    root = session.out / "dataset"
    ds = Dataset(root)
    server = ConsoleServer(dataset=root, host="127.0.0.1", port=0).start()
    pg = browser.new_page()
    try:
        pg.goto(server.url)
        pg.wait_for_function(f"document.querySelectorAll('#episodes li').length === {ds.num_episodes}", timeout=10000)
        segments = [list(dict.fromkeys(ds.episode(i)["segment"])) for i in range(ds.num_episodes)]
        i = next(k for k, s in enumerate(segments) if "correction" in s)
        pg.click(f"#episodes li[data-index='{i}']")
        pg.wait_for_function(f"document.getElementById('title').textContent.startsWith('episode {i} ')", timeout=5000)
        shown = pg.eval_on_selector_all("#row-segment span", "s => s.map(x => [x.dataset.value, +x.dataset.frames])")
        labels = ds.episode(i)["segment"]
        assert [v for v, _ in shown] == ["autonomous", "recovery", "correction"]
        assert sum(n for _, n in shown) == len(labels)
        sources = pg.eval_on_selector_all("#row-action_source span", "s => s.map(x => x.dataset.value)")
        assert sources == ["policy", "human"]
        pg.wait_for_function("document.querySelector('#frames img').naturalWidth === 64", timeout=10000)
        pg.click("#play")
        pg.wait_for_function("+document.getElementById('frame-label').dataset.frame >= 3", timeout=10000)
        if SHOTS:
            last = len(labels) - 3
            pg.eval_on_selector("#scrub", f"s => {{ s.value = {last}; s.dispatchEvent(new Event('input')); }}")
            pg.wait_for_timeout(300)
            pg.screenshot(path=str(Path(SHOTS) / "console_dataset.png"))
        label = pg.text_content("#frame-label")
        assert re.match(r"frame \d+: (policy|human) / (autonomous|recovery|correction)", label), label
    finally:
        pg.close()
        server.stop()


def test_robo_console_dataset_prints_its_url_and_token(session):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "robo.cli", "console", "--dataset", str(session.out / "dataset"),
                             "--bind", "0.0.0.0:0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"console: (http://[^/]+)/\?token=(\S+) \(", line)
        assert m, line
        base, token = m.groups()
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(base + "/api/episodes", timeout=5)
        with urllib.request.urlopen(f"{base}/api/episodes?token={token}", timeout=5) as r:
            body = json.loads(r.read())
        assert len(body["episodes"]) >= 3 and body["cameras"] == ["front"]
    finally:
        proc.terminate()
        proc.wait(10)
