"""`--console` on `robo run` and `robo collect` (sim cell, 64 px camera), driven in headless Chromium:
frames arrive, the page's pause / stop reach the session, and a stop ends in the controller's hold."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading

from console_helpers import LIFT, Lines


@contextlib.contextmanager
def console_session(browser, session):
    """Run `session(keys, stream)` on a thread with its own terminal keys; yield (page at its console, thread,
    result, stream). On the way out a session still running gets the terminal's q."""
    from robo.teleop.terminal import TerminalKeys

    r, w = os.pipe()
    keys, stream = TerminalKeys(r), Lines()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(code=session(keys, stream)))
    thread.start()
    page = None
    try:
        url = stream.wait_for(r"console: (http://\S+)", 90).group(1)
        page = browser.new_page()
        page.goto(url)
        yield page, thread, result, stream
    finally:
        if page is not None:
            page.close()
        if thread.is_alive():
            os.write(w, b"q")
            thread.join(30)
        keys.stop()
        os.close(w)


def test_robo_run_console_pause_and_stop_end_in_a_hold(browser, console_cell, drift_policy, tmp_path):
    from robo.cells.run import add_arguments, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "run"
    args = parser.parse_args(["--cell", str(console_cell), "--policy", str(drift_policy), "--task", LIFT,
                              "--episodes", "0", "--out", str(out), "--console", "127.0.0.1:0"])
    with console_session(browser, lambda keys, stream: run(args, keys=keys, stream=stream)) as (
            page, thread, result, _):
        page.wait_for_function("window.consoleStats.frames >= 3", timeout=30000)
        assert page.text_content("#phase") == "autonomous" and page.text_content("#mode").startswith("run")
        assert [b.get_attribute("data-event") for b in page.query_selector_all("#controls button")] == \
            ["go", "pause", "success", "failure", "stop"]
        page.keyboard.press("p")  # the page's shortcut for the pause button
        page.wait_for_function("document.getElementById('phase').textContent === 'paused'", timeout=5000)
        page.click("#btn-pause")  # resume
        page.wait_for_function("document.getElementById('phase').textContent === 'autonomous'", timeout=5000)
        page.click("#btn-stop")
        thread.join(30)
        assert not thread.is_alive() and result["code"] == 0
    report = json.loads((out / "run.json").read_text())
    assert report["ended"] == "stopped by the operator"
    assert report["controller"] and all(c["hold_confirmed"] for c in report["controller"])


def test_robo_collect_console_shows_the_teleop_session_and_its_stop_quits(browser, console_cell, tmp_path):
    from robo.commands.collect import add_arguments
    from robo.teleop.session import run_human_collect

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--task", LIFT, "--teleop", "keyboard", "--cell", str(console_cell), "--episodes", "2",
                              "--out", str(tmp_path / "demos"), "--console", "127.0.0.1:0"])
    args.seed = 0
    with console_session(browser, lambda keys, stream: run_human_collect(args, keys=keys, stream=stream)) as (
            page, thread, result, stream):
        page.wait_for_function("window.consoleStats.frames >= 3", timeout=30000)
        assert page.text_content("#phase") == "waiting for motion"
        assert page.eval_on_selector("#cameras img", "i => i.naturalWidth") == 64
        assert [b.get_attribute("data-key") for b in page.query_selector_all("#controls button")] == \
            ["enter", "y", "n", "x", "q"]
        page.click("#btn-quit")
        thread.join(30)
        assert not thread.is_alive() and result["code"] == 0
        assert "discarded (quit)" in stream.text
