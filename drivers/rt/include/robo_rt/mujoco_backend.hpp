// MuJoCo backend: reads qpos/qvel, writes data->ctrl, and steps the model once per loop period.
#pragma once

#include "robo_rt/backend.hpp"
#include "robo_rt/lockfree.hpp"

#include <array>
#include <mutex>
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

/// The whole simulated world at one tick (every joint, not only the arm's), for Python to observe the
/// scene without touching mjData while the loop thread steps it. Fixed capacity: no allocation.
struct PhysicsState {
  static constexpr int kMaxQpos = 128;  ///< largest model.nq mirrored
  static constexpr int kMaxQvel = 128;  ///< largest model.nv mirrored
  double t = 0.0;                       ///< simulated time of the state (s)
  int nq = 0;                           ///< valid entries of qpos (0: nothing published yet)
  int nv = 0;                           ///< valid entries of qvel
  std::array<double, kMaxQpos> qpos{};  ///< mjData.qpos
  std::array<double, kMaxQvel> qvel{};  ///< mjData.qvel
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
  /// The newest world state, published by every read() (each tick, and reset/rearm when nobody
  /// ticks). Any thread; wait-free for the loop. False when the model is larger than PhysicsState.
  bool physicsState(PhysicsState& out) const;

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
  bool mirrored_ = false;      // nq, nv fit PhysicsState
  mutable LatestSlot<PhysicsState> mirror_;
  mutable std::mutex mirror_read_mutex_;  // readers (Python threads) take turns; the loop never waits
  mutable PhysicsState mirror_read_;
};

}  // namespace robo::rt
