"""robo.learn.common.ProgressLine: the one status line of long jobs (logs and CI get a line per period)."""

from __future__ import annotations

import io

from robo.learn.common import ProgressLine


def test_the_line_shows_progress_fields_and_an_eta_only_after_the_first_percent():
    out = io.StringIO()  # not a TTY: one line per update
    line = ProgressLine(1000, "fqe", stream=out)
    line.update(1, {"phase": "FQE"}, force=True)  # a first step that also builds caches: no promise of hours
    line.update(20, {"phase": "FQE", "loss": 0.125}, force=True)
    line.update(1000, {"phase": "done"}, force=True)
    first, second, last = out.getvalue().splitlines()
    assert first.startswith("fqe 1/1000 (  0%) | phase FQE |") and "eta" not in first
    assert second.startswith("fqe 20/1000 (  2%) | phase FQE | loss 0.125 |") and "eta" in second
    assert last.startswith("fqe 1000/1000 (100%) | phase done |") and last.endswith("eta 0s")


def test_a_resumed_job_counts_its_eta_from_where_it_started():
    out = io.StringIO()
    line = ProgressLine(1000, "bc", stream=out, start=800)
    line.update(801, {}, force=True)  # 1 of the 200 steps left: within this run's first percent
    line.update(850, {}, force=True)
    early, later = out.getvalue().splitlines()
    assert "eta" not in early and "eta" in later
