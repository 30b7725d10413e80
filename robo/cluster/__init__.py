"""Scale-out on Ray: robots as cluster resources; the spine's learner and actors placed on a cluster.

    robo cluster join --cell configs/cells/sim_panda.yaml                  # this machine: a head node
    robo cluster join --cell franka_lab --address gpu-box:6379             # a robot machine joins it
    robo cluster status                                                    # nodes, robots, GPUs, holders
    robo train --residual --ray --actors-per-robot 1 --actors 4            # learner on a GPU, actors placed

- `robo.cluster.node`: what a node advertises (`node_resources`: each leasable resource of its cell as
  a unit custom resource, `robot:<cell>/<arm>`, `camera:<cell>/<camera>`; the cell as the node label
  `robo.io/cell`), `join` (`ray start`), `status` (who holds what).
- `robo.cluster.placement`: `train_on_ray`: the learner (`robo learner`'s code) in a GPU bundle (a CPU
  one when the cluster has none), a placement group per robot with its actors (`robo actor`'s code,
  on the cell) gang-scheduled with the robot and its cameras, simulated actors on any CPU; actors that
  die are restarted (their robot's HAL lease taken again), a learner that dies resumes its run folder.

Ray is optional (`pip install "robo[ray]"`): nothing outside this package imports it, and
`require_ray()` turns its absence into one line saying how to install it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INSTALL_HINT", "require_ray"]

INSTALL_HINT = 'Ray is not installed; install it with: pip install "robo[ray]"  (or: pip install "ray>=2.30")'


def require_ray() -> Any:
    """The `ray` module, or a one-line `RuntimeError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    return ray
