"""robo's hardware abstraction layer: resources, the driver registry, leases, cells, discovery.

    from robo.hal import Cell
    cell = Cell.load("configs/cells/sim_panda.yaml")
    with cell.acquire(job="demo"), cell:          # leases (arm exclusive, cameras shared), connect
        obs = cell["arm"].get_observation()
        frame = cell["front"].read()              # Frame: seq, t_capture, t_receive, color, depth

Modules: resource (Resource, Arm, Health), camera (Camera, Frame), align (CameraGroup), lease,
registry (register, get_driver), cell (Cell), discovery (discover), testing (conformance tests).
"""

from robo.hal.cell import Cell
from robo.hal.lease import Lease, LeaseError
from robo.hal.registry import get_driver, register
from robo.hal.resource import Arm, DeviceInfo, Health, Resource

__all__ = ["Arm", "Cell", "DeviceInfo", "Health", "Lease", "LeaseError", "Resource", "get_driver", "register"]
