// The controller driving a MuJoCo model: what robo.drivers.rt.MujocoController wraps.
#pragma once

#include "robo_rt/model.hpp"
#include "robo_rt/mujoco_backend.hpp"
#include "robo_rt/runtime.hpp"

#include <memory>
#include <string>
#include <vector>

namespace robo::rt {

/// Real-time controller on a MuJoCo mjModel/mjData pair (borrowed: the caller keeps them alive
/// and does not touch mjData while the loop thread runs). Kinematics and dynamics come from the
/// URDF through pinocchio, the physics from MuJoCo: the same controller code as on hardware.
class MujocoController : public Runtime {
 public:
  /// m, d: the MuJoCo model and data; urdf_path: the same robot as URDF; cfg: controller
  /// configuration; robot: the controlled joints, their TCP frames and actuators (default: the Panda,
  /// joints joint1..7, TCP frame `tcp`; other URDF joints are locked).
  MujocoController(const mjModel_* m, mjData_* d, const std::string& urdf_path, const ControllerConfig& cfg,
                   const RobotDescription& robot = RobotDescription::panda())
      : Runtime(std::make_unique<MujocoBackend>(m, d, cfg.loop_hz, robot),
                std::make_unique<RobotModel>(urdf_path, robot), cfg) {}

  /// The newest world state (time, qpos, qvel of the whole model), consistent, one tick old at
  /// most: how Python observes the scene while the loop thread owns mjData. False when the model
  /// is too large to mirror (nq or nv above 128; Python: RuntimeError).
  bool physicsState(PhysicsState& out) { return static_cast<MujocoBackend&>(backend()).physicsState(out); }

  static std::vector<std::string> armJoints() { return RobotDescription::panda().joints(); }
};

}  // namespace robo::rt
