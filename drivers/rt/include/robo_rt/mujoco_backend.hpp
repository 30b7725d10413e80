// MuJoCo backend: reads qpos/qvel, writes data->ctrl, and steps the model once per loop period.
#pragma once

#include "robo_rt/backend.hpp"
#include "robo_rt/lockfree.hpp"
#include "robo_rt/robot.hpp"

#include <array>
#include <mutex>
#include <string>
#include <vector>

struct mjModel_;
struct mjData_;

namespace robo::rt {

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
  /// 1 / (loop_hz * timestep) must be a whole number of physics steps per tick. `robot` names the
  /// joints, their actuators (torque motors, which must drive the joints directly) and the gripper.
  MujocoBackend(const mjModel_* m, mjData_* d, double loop_hz, const RobotDescription& robot);
  std::string name() const override { return "mujoco"; }
  double nativeRateHz() const override { return rate_hz_; }
  bool read(RobotState& out) override;
  /// Torque commands go to the motors as they are; a PD command (JointCommand::drive_pd) is run the way
  /// the drives of a PD-controlled robot run it: its torque is evaluated again at every physics step
  /// from the state of that step (as unitree_mujoco does), clipped to the actuators' ranges.
  void write(const JointCommand& cmd) override;
  void advance() override;
  bool simulated() const override { return true; }
  double simTime() const override;
  std::optional<VecN> armature() const override;
  /// Physics steps per loop tick.
  int substeps() const { return substeps_; }
  /// The newest world state, published by every read() (each tick, and reset/rearm when nobody
  /// ticks). Any thread; wait-free for the loop. False when the model is larger than PhysicsState.
  bool physicsState(PhysicsState& out) const;

 private:
  void applyDrivePd();
  const mjModel_* m_;
  mjData_* d_;
  double rate_hz_;
  int substeps_ = 1;
  int n_ = 0;
  std::vector<int> qpos_, dof_, act_;
  std::vector<double> gear_, ctrl_lo_, ctrl_hi_;
  int finger_qpos_[2] = {-1, -1}, finger_dof_[2] = {-1, -1};
  int gripper_act_ = -1;
  double gripper_sign_ = 1.0;  // +1 when a positive actuator force opens the fingers
  bool mirrored_ = false;      // nq, nv fit PhysicsState
  mutable LatestSlot<PhysicsState> mirror_;
  mutable std::mutex mirror_read_mutex_;  // readers (Python threads) take turns; the loop never waits
  mutable PhysicsState mirror_read_;
  JointCommand pd_;            // the PD command the simulated drives run (drive_pd)
};

}  // namespace robo::rt
