// A backend whose I/O runs elsewhere: another thread (e.g. a DDS reader in Python) pushes the measured
// state in and takes the newest command out, both through wait-free slots, so the controller's loop
// never waits for it. The unitree_g1 driver speaks the robot's DDS messages on its side.
#pragma once

#include "robo_rt/backend.hpp"
#include "robo_rt/lockfree.hpp"
#include "robo_rt/runtime.hpp"
#include "robo_rt/wake.hpp"

#include <atomic>
#include <mutex>
#include <string>

namespace robo::rt {

/// A backend fed from another thread through wait-free slots (see the file comment).
class ExternalBackend final : public Backend {
 public:
  /// n: joints; rate_hz: the loop rate; stale_after_s: read() reports no fresh state once the newest
  /// pushed one is older than this.
  ExternalBackend(int n, double rate_hz, double stale_after_s);
  std::string name() const override { return "external"; }
  double nativeRateHz() const override { return rate_hz_; }
  /// Newest pushed state; false when none arrived yet or it is older than stale_after_s.
  bool read(RobotState& out) override;
  /// Make this tick's command the newest one for takeCommand().
  void write(const JointCommand& cmd) override;
  bool stateAtConstruction() const override { return false; }

  /// I/O side (one producer thread): a measured state, n values each (rad, rad/s, N m). Returns false
  /// (state dropped) when a size is wrong or a value is not finite.
  bool pushState(const VecN& q, const VecN& dq, const VecN& tau);
  /// I/O side (one consumer thread): the newest command into `out`; false until the loop wrote one.
  bool takeCommand(JointCommand& out);
  /// States pushed / refused so far.
  std::uint64_t statesPushed() const { return pushed_.load(std::memory_order_relaxed); }
  std::uint64_t statesRefused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  struct Stamped {
    RobotState state;
    std::int64_t stamp_ns = 0;
  };
  int n_;
  double rate_hz_;
  double stale_after_s_;
  LatestSlot<Stamped> state_slot_;  // I/O thread -> loop
  Stamped latest_;
  bool have_state_ = false;
  LatestSlot<JointCommand> cmd_slot_;  // loop -> I/O thread
  std::mutex take_mutex_;              // takeCommand from more than one thread stays safe
  JointCommand taken_;
  bool have_command_ = false;
  std::atomic<std::uint64_t> pushed_{0}, refused_{0};
};

/// The controller on an ExternalBackend (robo.drivers.rt.ExternalController).
class ExternalController : public Runtime {
 public:
  /// urdf_path, robot: the controlled joints; cfg: the controller configuration; rate_hz: the loop
  /// rate (Hz); stale_after_s: a pushed state older than this is no longer fresh (s). Call reset()
  /// once the first state has been pushed.
  ExternalController(const std::string& urdf_path, const RobotDescription& robot, const ControllerConfig& cfg,
                     double rate_hz, double stale_after_s);
  /// The measured state (rad, rad/s, N m; n values each), from the I/O thread. False = refused.
  bool pushState(const VecN& q, const VecN& dq, const VecN& tau) { return external().pushState(q, dq, tau); }
  /// The newest command, for the I/O thread; false until the loop produced one.
  bool takeCommand(JointCommand& out) { return external().takeCommand(out); }
  ExternalBackend& external() { return static_cast<ExternalBackend&>(backend()); }
  const ExternalBackend& external() const { return static_cast<const ExternalBackend&>(constBackend()); }
};

}  // namespace robo::rt
