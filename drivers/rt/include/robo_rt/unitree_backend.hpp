// Unitree G1 arm backend over unitree_sdk2 (DDS topics rt/lowcmd, rt/lowstate). Compiled only when
// CMake finds unitree_sdk2 (ROBO_RT_WITH_UNITREE). UNTESTED on hardware.
#pragma once

#include "robo_rt/backend.hpp"
#include "robo_rt/lockfree.hpp"
#include "robo_rt/runtime.hpp"

#include <array>
#include <atomic>
#include <memory>
#include <string>

namespace robo::rt {

/// Which motors form the arm and how the others are held.
struct UnitreeOptions {
  std::string network_interface;   ///< NIC on the robot's network, e.g. "eth0"
  int num_motors = 29;             ///< motors in rt/lowcmd (G1 29-DoF)
  /// the 7 arm motors, shoulder to wrist (G1 29-DoF left arm: 15..21, right arm: 22..28)
  std::array<int, 7> arm_motors{{15, 16, 17, 18, 19, 20, 21}};
  float hold_kp = 60.0f;           ///< PD the motor drivers run on every other motor (N m/rad)
  float hold_kd = 1.5f;            ///< (N m s/rad)
  double stale_after_s = 0.01;     ///< read() reports no fresh state after this long without rt/lowstate (s)
};

/// The controller's torques go to the arm motors in torque mode (kp = kd = 0); every other motor is
/// held by the drivers' PD at the position it had when the first rt/lowstate arrived. The high-level
/// motion service must have been released first (MotionSwitcherClient), as in Unitree's examples.
class UnitreeBackend final : public Backend {
 public:
  explicit UnitreeBackend(const UnitreeOptions& options);
  ~UnitreeBackend() override;
  std::string name() const override { return "unitree"; }
  double nativeRateHz() const override { return 500.0; }
  bool read(RobotState& out) override;
  void write(const JointCommand& cmd) override;

 private:
  struct Dds;  // unitree_sdk2 types stay out of this header
  struct Motors {
    std::array<float, 35> q{}, dq{}, tau{};
    std::uint8_t mode_machine = 0;
    std::int64_t stamp_ns = 0;
  };
  void onLowState(const void* message);
  UnitreeOptions opt_;
  std::unique_ptr<Dds> dds_;
  LatestSlot<Motors> state_slot_;  // DDS thread -> loop thread
  Motors latest_{};
  std::array<float, 35> hold_q_{};
  std::atomic<bool> have_state_{false};
  bool hold_captured_ = false;
};

/// Runtime on one Unitree G1 arm. `arm_joints` / `tcp_frame` name the arm in the URDF; every other
/// URDF joint is locked at 0 (the kinematics are relative to the URDF root).
class UnitreeController : public Runtime {
 public:
  UnitreeController(const UnitreeOptions& options, const std::string& urdf_path,
                    const std::vector<std::string>& arm_joints, const std::string& tcp_frame,
                    const ControllerConfig& cfg);
};

}  // namespace robo::rt
