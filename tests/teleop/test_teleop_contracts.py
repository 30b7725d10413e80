"""Teleop devices pass the HAL conformance tests (keyboard on a pipe, leader arm on a sim arm)."""

from __future__ import annotations

import os

import pytest

from robo.hal.cell import Cell
from robo.teleop.keyboard import KeyboardTeleop
from robo.teleop.terminal import TerminalKeys
from robo.teleop.testing import TeleopContract


class TestKeyboardContract(TeleopContract):
    @pytest.fixture(autouse=True)
    def _pipe(self):
        self.r, self.w = os.pipe()
        yield
        os.close(self.w)
        os.close(self.r)

    def make_resource(self):
        return KeyboardTeleop(name="kb", keys=TerminalKeys(self.r))

    def start_source(self, resource) -> None:
        os.write(self.w, b"w")


class TestLeaderArmContract(TeleopContract):
    def make_resource(self):
        self.cell = Cell.from_dict({"name": "lc", "resources": {
            "lead": {"type": "sim_panda", "config": {"wrist_camera": False}},
            "leader": {"type": "leader_arm", "wiring": {"leader": "lead"}},
        }})
        return self.cell["leader"]

    @pytest.fixture
    def resource(self):
        res = self.make_resource()
        yield res
        res.close()
        res.release_lease()
        self.cell.close()
