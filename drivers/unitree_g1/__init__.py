"""Unitree G1 over its DDS messages (unitree_hg LowCmd_/LowState_, CycloneDDS): `type: unitree_g1` in a cell.

Needs the `unitree` extra (`pip install -e ".[unitree]"`: PyPI cyclonedds)."""

from robo.drivers.unitree_g1.config import UnitreeG1Config
from robo.drivers.unitree_g1.driver import UnitreeG1

__all__ = ["UnitreeG1", "UnitreeG1Config"]
