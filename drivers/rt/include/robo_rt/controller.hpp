// The controller: validated targets in through a lock-free slot, one tick = model -> watchdog ->
// reference -> control law -> limits. The same object drives MuJoCo and hardware backends.
#pragma once

#include "robo_rt/config.hpp"
#include "robo_rt/events.hpp"
#include "robo_rt/laws.hpp"
#include "robo_rt/lockfree.hpp"
#include "robo_rt/model.hpp"
#include "robo_rt/trajectory.hpp"
#include "robo_rt/types.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace robo::rt {

/// Latest chunk horizon accepted: the last waypoint may be at most this far in the future (s).
constexpr double kMaxChunkHorizon = 10.0;

/// What the loop publishes every tick for Python to read.
struct Snapshot {
  std::uint64_t tick = 0;   ///< ticks since construction
  double t = 0.0;           ///< controller clock (s)
  Mode mode = Mode::kIdle;
  RobotState state;         ///< measured
  Vec3 ee_pos = Vec3::Zero();          ///< measured TCP position, world (m)
  Quat ee_quat = Quat::Identity();     ///< measured TCP orientation, world
  Vec7 tau = Vec7::Zero();             ///< torques sent to the backend (N m)
  double gripper_force = 0.0;          ///< gripper force sent (N, positive opens)
  Reference ref;                       ///< reference at this tick
};

class Controller {
 public:
  /// `dt`: loop period (s), used by the torque-rate limit.
  Controller(std::unique_ptr<RobotModel> model, const ControllerConfig& cfg, double dt);

  // ---- command side: any thread but the loop's; calls are serialised internally --------------
  bool setJointTarget(const Vec7& q, double width, double now);
  bool setEeTarget(const Vec3& pos, const Eigen::Vector4d& quat_wxyz, double width, double now);
  /// Timestamped waypoints (controller clock), Cartesian (pos, quat_wxyz, width) or joint (q, width).
  bool setChunk(TargetSpace space, const std::vector<Waypoint>& wps, double now);
  bool setGains(const Gains& g);
  Gains gains() const;
  /// Ask the loop to reset / re-arm at its next tick; returns a ticket for served().
  std::uint64_t requestReset();
  std::uint64_t requestRearm();
  /// True once the loop has served the reset/rearm request with this ticket.
  bool served(std::uint64_t ticket) const { return served_.load(std::memory_order_acquire) >= ticket; }
  bool held() const { return held_.load(std::memory_order_acquire); }

  // ---- loop side ---------------------------------------------------------------------------
  /// One tick. Real-time safe: no allocation, no locks.
  void step(const RobotState& s, double t, JointCommand& out, Snapshot& snap);
  /// Serve pending reset/rearm requests now (loop stopped; caller owns the loop).
  void service(const RobotState& s, double t, Snapshot& snap);

  Events& events() { return events_; }
  const Events& events() const { return events_; }
  const ControllerConfig& config() const { return cfg_; }
  const Limits& limits() const { return model_->limits(); }

 private:
  bool validPoint(TargetSpace space, std::array<double, 8>& x);  // producer thread, may clamp/normalise
  bool submit(TargetSpace space, const Waypoint* wps, int n, double now, bool single);
  void serviceRequests(const RobotState& s, double t);
  void resetNow(const RobotState& s, double t);
  void rearmNow(const RobotState& s, double t);
  void startCommand(const Command& c, const RobotState& s, double t);
  void applyLimits(const RobotState& s, Vec7& tau);
  bool brakeBeforeLimits(const RobotState& s, Vec7& tau) const;  // joint-limit braking (issue 22)
  void fillSnapshot(const RobotState& s, double t, Snapshot& snap) const;
  Reference measuredReference(TargetSpace space, const RobotState& s) const;

  ControllerConfig cfg_;
  double dt_;
  std::unique_ptr<RobotModel> model_;       // loop thread
  std::unique_ptr<RobotModel> cmd_model_;   // command thread (FK checks of joint targets)
  Vec3 box_min_, box_max_;

  // command side
  mutable std::mutex cmd_mutex_;
  LatestSlot<Command> cmd_slot_;
  LatestSlot<Gains> gains_slot_;
  Gains cmd_gains_;
  std::uint64_t cmd_seq_ = 0;
  std::atomic<std::uint64_t> requests_{0};       // ticket counter for reset and rearm requests
  std::atomic<std::uint64_t> reset_ticket_{0};   // newest reset ticket asked for
  std::atomic<std::uint64_t> rearm_ticket_{0};   // newest rearm ticket asked for
  std::atomic<std::uint64_t> served_{0};
  std::atomic<bool> held_{false};

  // loop side
  Events events_;
  Gains gains_;
  Dynamics dyn_;
  Trajectory traj_;
  Reference ref_;
  JointImpedance joint_law_;
  OperationalSpace osc_law_;
  HoldPose hold_law_;
  Vec7 dq_max_ = Vec7::Zero();
  Vec7 posture_ = Vec7::Zero();
  Vec7 hold_q_ = Vec7::Zero();
  Vec7 tau_prev_ = Vec7::Zero();
  RobotState last_good_;
  bool have_good_ = false;
  bool initialised_ = false;
  bool armed_ = false;          // a target arrived since reset/rearm: the watchdog is running
  double stale_from_ = 0.0;     // the watchdog counts from here (s)
  std::uint64_t ticks_ = 0;
  std::uint64_t reset_done_ = 0, rearm_done_ = 0;
};

}  // namespace robo::rt
