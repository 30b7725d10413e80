// The controller: validated targets in through a lock-free slot, one tick = model -> watchdog ->
// reference -> control law -> limits. The same object drives MuJoCo and hardware backends, torque
// drives (the law's torques) and PD drives (the configuration they track, OutputMode::kJointPd).
#pragma once

#include "robo_rt/config.hpp"
#include "robo_rt/events.hpp"
#include "robo_rt/laws.hpp"
#include "robo_rt/lockfree.hpp"
#include "robo_rt/model.hpp"
#include "robo_rt/trajectory.hpp"
#include "robo_rt/types.hpp"

#include <algorithm>
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
  int n_tcp = 1;            ///< TCP frames K
  std::array<Vec3, kMaxTcps> ee_pos{};   ///< measured TCP positions, world (m)
  std::array<Quat, kMaxTcps> ee_quat{};  ///< measured TCP orientations, world
  VecN tau;                 ///< torques sent to the backend (N m); PD drives: the PD torque at the measured state
  double gripper_force = 0.0;          ///< gripper force sent (N, positive opens)
  Reference ref;                       ///< reference at this tick (PD drives: ref.q is the configuration they track)
};

class Controller {
 public:
  /// `dt`: loop period (s), used by the rate limits and the differential IK.
  Controller(std::unique_ptr<RobotModel> model, const ControllerConfig& cfg, double dt);

  // ---- command side: any thread but the loop's; calls are serialised internally --------------
  bool setJointTarget(const VecN& q, double width, double now);
  /// One TCP target per TCP frame (pos (m), quat_wxyz), all in one command.
  bool setEeTargets(const std::vector<Vec3>& pos, const std::vector<Eigen::Vector4d>& quat_wxyz, double width,
                    double now);
  /// Timestamped waypoints (controller clock), Cartesian or joint, laid out as PointLayout says.
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
  /// One tick. `fresh`: the backend had a new state for this tick. Real-time safe: no allocation,
  /// no locks.
  void step(const RobotState& s, bool fresh, double t, JointCommand& out, Snapshot& snap);
  /// Serve pending reset/rearm requests now (loop stopped; caller owns the loop).
  void service(const RobotState& s, double t, Snapshot& snap);
  /// The loop (re)starts at controller time t: the state timeout counts from here, not across the time
  /// the loop did not run.
  void loopStarted(double t) { last_fresh_ = std::max(last_fresh_, t); }

  Events& events() { return events_; }
  const Events& events() const { return events_; }
  const ControllerConfig& config() const { return cfg_; }
  const Limits& limits() const { return model_->limits(); }
  const RobotDescription& robot() const { return model_->robot(); }
  int nJoints() const { return n_; }
  int nTcps() const { return n_tcp_; }
  const PointLayout& layout() const { return layout_; }

 private:
  bool validPoint(TargetSpace space, std::array<double, kPointSize>& x);  // producer thread, may clamp/normalise
  bool submit(TargetSpace space, const Waypoint* wps, int n, double now, bool single);
  void serviceRequests(const RobotState& s, double t);
  void resetNow(const RobotState& s, double t);
  void rearmNow(const RobotState& s, double t);
  void enterHold(const RobotState& s, Event why);
  void startCommand(const Command& c, const RobotState& s, double t);
  void torqueStep(const RobotState& s, double t, JointCommand& out);
  void drivePdStep(const RobotState& s, double t, JointCommand& out);
  void applyLimits(const RobotState& s, VecN& tau);
  bool brakeBeforeLimits(const RobotState& s, VecN& tau) const;  // joint-limit braking (issue 22)
  void applyDriveLimits(const RobotState& s, JointCommand& out);  // the same limits on a PD command
  void fillSnapshot(const RobotState& s, double t, Snapshot& snap) const;
  Reference measuredReference(TargetSpace space, const RobotState& s) const;

  ControllerConfig cfg_;
  double dt_;
  std::unique_ptr<RobotModel> model_;       // loop thread
  std::unique_ptr<RobotModel> cmd_model_;   // command thread (FK checks of joint targets)
  int n_, n_tcp_;
  PointLayout layout_;
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
  DifferentialIk ik_;
  VecN dq_max_;
  VecN posture_;
  VecN hold_q_;
  VecN tau_prev_;
  VecN q_cmd_, dq_cmd_;   // PD drives: the commanded configuration the differential IK moves
  VecN q_des_prev_;       // PD drives: last position target sent
  VecN tau_ff_prev_;      // PD drives: last feed-forward sent
  RobotState last_good_;
  bool have_good_ = false;
  bool initialised_ = false;
  bool armed_ = false;          // a target arrived since reset/rearm: the watchdog is running
  double stale_from_ = 0.0;     // the watchdog counts from here (s)
  double last_fresh_ = 0.0;     // time of the newest fresh state (s)
  std::uint64_t ticks_ = 0;
  std::uint64_t reset_done_ = 0, rearm_done_ = 0;
};

}  // namespace robo::rt
