"""Contract test for teleop devices (pytest): a device's test class subclasses `TeleopContract` and
provides a `resource` fixture, as the HAL's contracts in robo.hal.testing (which know no teleop)."""

from __future__ import annotations

import numpy as np

from robo.hal.testing import ResourceContract
from robo.spec import ACTION
from robo.teleop.base import TeleopCommand, TeleopDevice


class TeleopContract(ResourceContract):
    """Teleop devices: read() gives a TeleopCommand; while disabled the mapped action holds the arm."""

    def test_read_gives_a_command_that_holds_when_disabled(self, resource):
        assert isinstance(resource, TeleopDevice)
        resource.connect()
        self.start_source(resource)
        resource.enabled = False
        cmd = resource.read()
        assert isinstance(cmd, TeleopCommand) and cmd.mode in ("ee_delta", "joint")
        assert not cmd.moving
        if cmd.mode == "ee_delta":
            a = cmd.to_action(-np.full(7, 0.03), np.full(7, 0.03))
            assert np.all(a[:6] == 0) and a[6] in (-1.0, 1.0)
        else:
            a = cmd.to_action(-np.full(8, 3.0), np.full(8, 3.0))
            assert np.all(np.isnan(a[:7]))
        assert resource.spec()[ACTION].shape in ((7,), (8,))
