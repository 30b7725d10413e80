"""The 95% Wilson interval every evaluation, report and plot quotes."""

from __future__ import annotations

import pytest

from robo.learn.common import wilson_interval


def test_known_values() -> None:
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo, hi = wilson_interval(0, 100)
    assert lo == 0.0 and hi == pytest.approx(0.0370, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("n", [1, 3, 10, 20, 30, 49, 100, 137, 200])
def test_contains_the_rate_in_floats_and_percent(n: int) -> None:
    """At 0% / 100% the float edges used to fall a hair inside the rate (matplotlib refuses negative error bars)."""
    for k in range(n + 1):
        p = k / n
        lo, hi = wilson_interval(k, n)
        assert 0.0 <= lo <= p <= hi <= 1.0
        assert 100 * p - 100 * lo >= 0.0 and 100 * hi - 100 * p >= 0.0
