// Runtime: a backend + a controller + the loop that ticks them, either synchronously from Python
// (fast mode: step(n), simulated time) or on its own thread (start(): absolute deadlines met by
// sleeping, or sleeping then spinning (wake.hpp), SCHED_FIFO and locked memory when the OS allows).
// This is the object Python talks to.
#pragma once

#include "robo_rt/backend.hpp"
#include "robo_rt/controller.hpp"
#include "robo_rt/stats.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace robo::rt {

/// What the real-time thread obtained from the OS.
struct RtStatus {
  bool sched_fifo = false;     ///< the loop thread runs SCHED_FIFO
  bool memory_locked = false;  ///< mlockall(MCL_CURRENT) succeeded
  bool cpu_pinned = false;     ///< the loop thread is pinned to cpu_affinity
  std::string warning;         ///< empty, or what was refused and how to grant it
};

class Runtime {
 public:
  /// Takes ownership of the backend and model; the loop rate is cfg.loop_hz or the backend's rate.
  Runtime(std::unique_ptr<Backend> backend, std::unique_ptr<RobotModel> model, const ControllerConfig& cfg);
  virtual ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Target := the current pose (Cartesian hold), gripper target := current width; clears the
  /// interpolator, the watchdog hold and the rate limiter; the null-space posture becomes the
  /// current joint position unless the config fixes it. Returns once the loop has done it.
  void reset();
  /// World-frame TCP target of a one-TCP robot: pos (m, shape (3,)), quat_wxyz (unit quaternion,
  /// shape (4,)), gripper_width (m). Reached over interp_duration_s. Returns False, and keeps the last
  /// good target, when anything is NaN/inf, outside the workspace box or the width range, the
  /// quaternion norm is off by more than quat_norm_tolerance, or the robot has more than one TCP.
  bool setEeTarget(const std::array<double, 3>& pos, const std::array<double, 4>& quat_wxyz, double gripper_width);
  /// World-frame targets of every TCP at once (bimanual): pos (m, (K, 3)), quat_wxyz ((K, 4)),
  /// gripper_width (m). Accepted or rejected whole, as set_ee_target.
  bool setEeTargets(const std::vector<std::array<double, 3>>& pos, const std::vector<std::array<double, 4>>& quat_wxyz,
                    double gripper_width);
  /// Joint target q (rad, shape (n,)) and gripper_width (m), reached over interp_duration_s.
  /// Returns False (target kept) when anything is NaN/inf, a joint is outside its limits, the
  /// width is out of range or a TCP at q is outside the workspace box. Joints inside the limit
  /// margin are clamped out of it.
  bool setJointTarget(const std::vector<double>& q, double gripper_width);
  /// Timestamped Cartesian action chunk: t (s, controller clock, see now(); strictly increasing,
  /// shape (T,), T <= 64), pos (m, (T * K, 3): waypoint after waypoint, each TCP in turn), quat_wxyz
  /// ((T * K, 4)), gripper_width (m, (T,)). The reference passes through each waypoint at its time
  /// (interpolation per config); waypoints already in the past are skipped. The watchdog counts from
  /// the last waypoint's time. Rejected whole (returns False) if any waypoint is invalid.
  bool setChunk(const std::vector<double>& t, const std::vector<std::array<double, 3>>& pos,
                const std::vector<std::array<double, 4>>& quat_wxyz, const std::vector<double>& gripper_width);
  /// Timestamped joint action chunk: t (s, (T,)), q (rad, (T, n)), gripper_width (m, (T,)).
  bool setJointChunk(const std::vector<double>& t, const std::vector<std::vector<double>>& q,
                     const std::vector<double>& gripper_width);
  /// Fast mode: run n_ticks ticks synchronously, as fast as possible (each tick: read state,
  /// control, limits, write torques, step the physics). Simulated time drives the watchdog and
  /// interpolation. Raises RuntimeError while the loop thread runs.
  void step(int n_ticks);
  /// Start the loop thread. realtime=True: paced by the wall clock with absolute deadlines
  /// (teleop, HIL), waited for per config.wake_mode (sleep, or sleep then spin the last
  /// spin_margin_us); SCHED_FIFO and locked memory when allowed, else a warning (see rt_status()).
  /// realtime=False: the thread ticks as fast as it can.
  void start(bool realtime);
  /// Stop the loop thread (no-op when not running). The last torques stay in the backend.
  void stop();
  /// Whether the loop thread runs.
  bool running() const { return running_.load(std::memory_order_acquire); }
  /// Controller clock (s): simulated time for a MuJoCo backend in fast mode, wall time
  /// (continuing from it) while the real-time thread runs. Chunk times use this clock.
  double now() const;
  /// Newest per-tick snapshot (measured state, torques sent, reference, mode).
  Snapshot state() const;
  /// Loop timing: wake lateness, compute and tick time percentiles (us), overruns; the OS wake-up
  /// latency, the spin margin and the loop thread's CPU time (see StatsSummary).
  StatsSummary stats() const { return stats_.summarize(); }
  /// Forget timing samples and counters.
  void resetStats() { stats_.clear(); }
  /// Event counters: (name, count) pairs, see events.hpp.
  std::vector<std::pair<std::string, std::uint64_t>> events() const;
  /// Leave the watchdog hold: target := current pose (same space as before), gripper target kept.
  /// Returns once the loop has done it. Targets sent while holding are rejected.
  void rearm();
  /// True while the watchdog hold is active.
  bool held() const { return controller_.held(); }
  /// Replace the gains (validated; returns False and keeps the old ones on bad values).
  bool setGains(const Gains& g) { return controller_.setGains(g); }
  /// Current gains.
  Gains gains() const { return controller_.gains(); }
  /// What the real-time thread obtained (SCHED_FIFO, memory lock) and any warning.
  RtStatus rtStatus() const;
  /// Loop rate (Hz).
  double loopHz() const { return loop_hz_; }
  /// Joint limits used by the safety layer.
  const Limits& limits() const { return controller_.limits(); }
  /// The configuration in force.
  const ControllerConfig& config() const { return controller_.config(); }
  /// The controlled joints, their groups and TCP frames.
  const RobotDescription& robot() const { return controller_.robot(); }
  /// Controlled joints n.
  int nJoints() const { return controller_.nJoints(); }
  /// TCP frames K.
  int nTcps() const { return controller_.nTcps(); }

 protected:
  Backend& backend() { return *backend_; }
  const Backend& constBackend() const { return *backend_; }

 private:
  bool acquire(int who);
  void release();
  void waitServed(std::uint64_t ticket);
  void tick(double t, double lateness_us);
  void threadMain(bool realtime);
  void setupRealtime();

  std::unique_ptr<Backend> backend_;
  double loop_hz_;
  Controller controller_;
  TimingStats stats_;
  JointCommand cmd_;
  RobotState state_;
  LatestSlot<Snapshot> snap_slot_;
  mutable std::mutex snap_read_mutex_;
  mutable Snapshot snap_read_;

  std::atomic<int> owner_{0};  // 0 nobody, 1 a Python call (step/reset), 2 the loop thread
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> realtime_{false};
  std::atomic<double> sim_time_{0.0};
  std::atomic<std::int64_t> wall_base_ns_{0};
  std::atomic<double> wall_base_t_{0.0};
  std::thread thread_;
  std::mutex start_mutex_;
  mutable std::mutex rt_status_mutex_;
  RtStatus rt_status_;
  bool memory_locked_by_us_ = false;
};

}  // namespace robo::rt
