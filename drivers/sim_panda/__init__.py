"""Simulated Franka Panda (MuJoCo) arm driver: `type: sim_panda` in a cell."""

from robo.drivers.sim_panda.config import SimPandaConfig
from robo.drivers.sim_panda.driver import SimPanda

__all__ = ["SimPanda", "SimPandaConfig"]
