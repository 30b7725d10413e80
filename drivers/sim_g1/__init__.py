"""Simulated Unitree G1 (MuJoCo, pelvis welded): `type: sim_g1` in a cell."""

from robo.drivers.sim_g1.config import SimG1Config
from robo.drivers.sim_g1.driver import SimG1

__all__ = ["SimG1", "SimG1Config"]
