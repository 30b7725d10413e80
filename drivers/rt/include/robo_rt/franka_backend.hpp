// Franka Emika Panda / FR3 backend over libfranka (FCI). Compiled only when CMake finds libfranka
// (ROBO_RT_WITH_FRANKA). UNTESTED on hardware: written against the libfranka 0.9-0.15 API.
#pragma once

#include "robo_rt/backend.hpp"
#include "robo_rt/runtime.hpp"

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace franka {
class Robot;
class Gripper;
}  // namespace franka

namespace robo::rt {

/// Connection and safety settings of a Franka arm.
struct FrankaOptions {
  std::string robot_ip;                 ///< FCI address of the arm, e.g. "172.16.0.2"
  bool enforce_realtime = true;         ///< libfranka refuses to run without a real-time kernel when true
  bool use_gripper = true;              ///< drive the Franka Hand through franka::Gripper
  double gripper_speed = 0.1;           ///< finger speed for move/grasp (m/s)
  double grasp_force = 40.0;            ///< grasp force when closing (N)
  double gripper_deadband = 0.002;      ///< width-target change that triggers a new gripper command (m)
  /// Contact reflex thresholds per joint, libfranka setCollisionBehavior (N m)
  std::array<double, 7> collision_torque{{20.0, 20.0, 18.0, 18.0, 16.0, 14.0, 12.0}};
  /// Contact reflex thresholds on the TCP wrench (N, N m)
  std::array<double, 6> collision_force{{20.0, 20.0, 20.0, 25.0, 25.0, 25.0}};
};

/// libfranka paces the loop (1 kHz callback); the robot adds gravity itself, so the backend sends
/// tau - gravity. The gripper runs on its own (non real-time) thread, because franka::Gripper
/// commands block for the whole finger motion.
class FrankaBackend final : public Backend {
 public:
  explicit FrankaBackend(const FrankaOptions& options);
  ~FrankaBackend() override;
  std::string name() const override { return "franka"; }
  double nativeRateHz() const override { return 1000.0; }
  bool read(RobotState& out) override;
  void write(const JointCommand& cmd) override {}
  bool ownsLoop() const override { return true; }
  std::string runOwnLoop(const TickFn& tick) override;

 private:
  void gripperLoop();
  FrankaOptions opt_;
  std::unique_ptr<franka::Robot> robot_;
  std::unique_ptr<franka::Gripper> gripper_;
  std::thread gripper_thread_;
  std::atomic<bool> stop_gripper_{false};
  std::atomic<double> gripper_width_{0.0};
  std::atomic<double> gripper_target_{-1.0};
};

/// Runtime on a Franka arm: the same controller as MujocoController.
class FrankaController : public Runtime {
 public:
  /// options: connection settings; urdf_path: the arm as URDF (joints joint1..7, frame `tcp`).
  FrankaController(const FrankaOptions& options, const std::string& urdf_path, const ControllerConfig& cfg);
};

}  // namespace robo::rt
