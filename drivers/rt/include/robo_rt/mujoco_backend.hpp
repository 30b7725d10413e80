// MuJoCo backend: reads qpos/qvel, writes data->ctrl, and steps the model once per loop period.
#pragma once

#include "robo_rt/backend.hpp"

#include <array>
#include <string>

struct mjModel_;
struct mjData_;

namespace robo::rt {

/// Names of the MuJoCo elements the backend drives (the Panda MJCF in sim/assets by default).
struct MujocoNames {
  std::array<std::string, kDof> joints{{"joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7"}};
  std::array<std::string, kDof> actuators{
      {"actuator1", "actuator2", "actuator3", "actuator4", "actuator5", "actuator6", "actuator7"}};
  std::array<std::string, 2> fingers{{"finger_joint1", "finger_joint2"}};
  std::string gripper_actuator = "actuator_gripper";
};

class MujocoBackend final : public Backend {
 public:
  /// Borrows `m` and `d` (the caller keeps them alive). `loop_hz` 0 = 1 / timestep; otherwise
  /// 1 / (loop_hz * timestep) must be a whole number of physics steps per tick.
  MujocoBackend(const mjModel_* m, mjData_* d, double loop_hz, const MujocoNames& names = {});
  std::string name() const override { return "mujoco"; }
  double nativeRateHz() const override { return rate_hz_; }
  bool read(RobotState& out) override;
  void write(const JointCommand& cmd) override;
  void advance() override;
  bool simulated() const override { return true; }
  double simTime() const override;
  std::optional<Vec7> armature() const override;
  /// Physics steps per loop tick.
  int substeps() const { return substeps_; }

 private:
  const mjModel_* m_;
  mjData_* d_;
  double rate_hz_;
  int substeps_ = 1;
  std::array<int, kDof> qpos_{}, dof_{}, act_{};
  std::array<double, kDof> gear_{};
  std::array<int, 2> finger_qpos_{{-1, -1}}, finger_dof_{{-1, -1}};
  int gripper_act_ = -1;
  double gripper_sign_ = 1.0;  // +1 when a positive actuator force opens the fingers
};

}  // namespace robo::rt
