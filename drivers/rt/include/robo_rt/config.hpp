// Controller configuration. The Python dataclass robo.drivers.rt.ControllerConfig mirrors these
// fields one to one (a test checks names and defaults); comments carry units.
#pragma once

#include "robo_rt/types.hpp"

#include <array>
#include <limits>
#include <string>
#include <vector>

namespace robo::rt {

/// How the reference moves from one target to the next.
enum class Interpolation : int { kLinear = 0, kMinJerk = 1 };

/// How the real-time loop waits for its next deadline (see wake.hpp).
enum class WakeMode : int {
  kSleep = 0,  ///< clock_nanosleep to the deadline: no CPU while waiting, wakes as late as the OS makes it
  kSpin = 1,   ///< clock_nanosleep to spin_margin_us before the deadline, then spin on the monotonic clock
};

/// Longest spin margin, as a fraction of the loop period: bounds the CPU time the spin mode costs
/// (at 1 kHz at most 200 us of spinning per 1 ms tick, 20 % of one core).
inline constexpr double kMaxSpinFraction = 0.2;

/// Gains that may change while the loop runs (ControllerConfig holds their start values).
struct Gains {
  std::array<double, kMaxDof> joint_kp{};  ///< joint impedance stiffness (N m/rad), one per joint (n used)
  std::array<double, kMaxDof> joint_kd{};  ///< joint impedance damping (N m s/rad), one per joint (n used)
  double cart_kp_pos = 0;     ///< OSC position stiffness, task acceleration per metre (1/s^2)
  double cart_kp_rot = 0;     ///< OSC orientation stiffness, task acceleration per radian (1/s^2)
  double cart_damping_ratio = 1;  ///< OSC damping ratio; kd = 2 * ratio * sqrt(kp)
  double nullspace_kp = 0;    ///< null-space posture stiffness (N m/rad)
  double nullspace_kd = 0;    ///< null-space posture damping (N m s/rad)
  double max_pos_error = 0;   ///< reference limiting: position error clipped to this norm per tick (m)
  double max_rot_error = 0;   ///< reference limiting: orientation error clipped to this norm per tick (rad)
  double max_joint_error = 0; ///< reference limiting: joint error clipped to this per joint per tick (rad)
  double max_ee_speed = 0;    ///< reference limiting: TCP velocity feed-forward clipped to this norm (m/s)
  double max_ee_ang_speed = 0;  ///< reference limiting: TCP angular velocity feed-forward norm clip (rad/s)
  double gripper_kp = 0;      ///< gripper width stiffness (N/m)
  double gripper_kd = 0;      ///< gripper width damping (N s/m)
};

/// Everything the controller needs besides the robot model. Defaults drive the MuJoCo Panda tasks
/// (500 Hz loop, 10 Hz policy).
struct ControllerConfig {
  // --- timing -------------------------------------------------------------------------------
  double loop_hz = 0.0;        ///< control rate (Hz); 0 = the backend's own (MuJoCo: 1 / model.opt.timestep)
  double policy_hz = 10.0;     ///< rate at which Python sends targets (Hz); sets the defaults below
  double watchdog_timeout_s = 0.0;  ///< hold when the newest target is older than this (s); 0 = 3 / policy_hz
  double interp_duration_s = 0.0;   ///< a single target is reached over this time (s); 0 = 1 / policy_hz
  Interpolation interpolation = Interpolation::kLinear;  ///< linear or minimum-jerk time scaling

  // --- joints -------------------------------------------------------------------------------
  int n_joints = 7;            ///< controlled joints; every per-joint field below has this many values
  OutputMode output_mode = OutputMode::kTorque;  ///< torques (torque drives, MuJoCo motors) or a PD command the drives run (Unitree)

  // --- joint impedance ----------------------------------------------------------------------
  std::vector<double> joint_kp{600, 600, 600, 600, 250, 150, 50};  ///< stiffness (N m/rad), n_joints values
  std::vector<double> joint_kd{50, 50, 50, 50, 30, 25, 15};        ///< damping (N m s/rad), n_joints values
  double max_joint_error = 0.1;      ///< reference limiting: joint error clip per joint per tick (rad)

  // --- operational-space (Cartesian impedance) control --------------------------------------
  double cart_kp_pos = 400.0;        ///< task acceleration per metre of error (1/s^2)
  double cart_kp_rot = 400.0;        ///< task acceleration per radian of error (1/s^2)
  double cart_damping_ratio = 1.0;   ///< kd = 2 * ratio * sqrt(kp)
  double nullspace_kp = 20.0;        ///< posture stiffness in the null space (N m/rad)
  double nullspace_kd = 4.0;         ///< posture damping in the null space (N m s/rad)
  double max_pos_error = 0.02;       ///< reference limiting: position error norm clip per tick (m)
  double max_rot_error = 0.1;        ///< reference limiting: orientation error norm clip per tick (rad)
  double max_ee_speed = 0.5;         ///< reference limiting: TCP velocity feed-forward norm clip (m/s)
  double max_ee_ang_speed = 1.5;     ///< reference limiting: TCP angular velocity feed-forward norm clip (rad/s)
  double osc_min_eig = 1e-3;         ///< floor on eigenvalues of J M^-1 J^T (singularity guard) (1/kg)
  /// null-space posture (rad), n_joints values; NaN entries, or an empty list, = the joint position
  /// captured at reset()
  std::vector<double> posture{};
  /// rotor inertia added to the model's diagonal (kg m^2), n_joints values; NaN entries, or an empty
  /// list, = take it from the backend (MuJoCo dof_armature) or 0
  std::vector<double> armature{};

  // --- Cartesian targets on PD drives (output_mode joint_pd): differential IK -----------------
  double ik_gain = 20.0;             ///< the commanded configuration closes the TCP error at this rate (1/s)
  double ik_damping = 0.02;          ///< damped least squares: lambda added to the singular values (m)
  double ik_posture_gain = 1.0;      ///< null-space pull of the commanded configuration toward the posture (1/s)

  // --- gripper --------------------------------------------------------------------------------
  double gripper_kp = 2000.0;        ///< width stiffness (N/m)
  double gripper_kd = 20.0;          ///< width damping (N s/m)
  double gripper_max_force = 70.0;   ///< force clip (N)
  double gripper_max_width = 0.08;   ///< widest opening; width targets outside [0, this] are rejected (m)

  // --- watchdog hold ------------------------------------------------------------------------
  double hold_damping_scale = 2.0;   ///< hold uses joint_kp and joint_kd times this (never zero torque)

  // --- safety limits ------------------------------------------------------------------------
  double joint_limit_margin = 0.05;  ///< soft zone inside each position limit; joint targets are clamped out of it (rad)
  double joint_limit_kp = 200.0;     ///< push-back stiffness inside the soft zone (N m/rad)
  double joint_limit_kd = 10.0;      ///< push-back damping inside the soft zone (N m s/rad)
  double velocity_limit_scale = 1.0; ///< joint speed limit = this x model limit (URDF velocity)
  double velocity_limit_kd = 20.0;   ///< braking damping on speed above the limit (N m s/rad)
  double torque_limit_scale = 1.0;   ///< torque clip = this x model limit (URDF effort)
  double torque_rate_limit = 1000.0; ///< |d tau / dt| clip (N m/s); Franka's limit is 1000
  std::array<double, 3> workspace_min{{0.0, -0.7, -0.05}};  ///< TCP box lower corner, world frame (m)
  std::array<double, 3> workspace_max{{0.9, 0.7, 1.0}};     ///< TCP box upper corner, world frame (m)
  double workspace_kp = 2000.0;      ///< wall stiffness when the measured TCP leaves the box (N/m)
  double workspace_kd = 50.0;        ///< wall damping on outward TCP speed (N s/m)
  double quat_norm_tolerance = 0.1;  ///< quaternion targets must have | |q| - 1 | <= this (then normalised)
  double state_timeout_s = 0.1;      ///< hold (as the watchdog does) when the backend has had no fresh state for this long (s)

  // --- joint-limit braking (hardening, issue 22) ----------------------------------------------
  // Every tick, after the torque and torque-rate limits, each joint's stopping distance is planned
  // from its speed, its acceleration and the braking the torque and torque-rate limits allow; a
  // joint that could no longer stop before its limit is braked instead of following the law.
  double joint_brake_margin = 0.01;  ///< braking plans to stop this far inside each hard position limit (rad)
  double joint_brake_torque_fraction = 0.8;  ///< braking is planned with this fraction of the torque limit; the rest is headroom for coupling between joints and model error

  // --- real-time thread -----------------------------------------------------------------------
  int rt_priority = 80;              ///< SCHED_FIFO priority; 0 = stay SCHED_OTHER
  bool lock_memory = true;           ///< mlockall(MCL_CURRENT) before the loop starts
  int cpu_affinity = -1;             ///< pin the loop thread to this CPU; -1 = no pinning
  int stats_window = 65536;          ///< timing samples kept for percentiles (ticks)

  // --- wake-up of the real-time loop (issue 24) ---------------------------------------------
  WakeMode wake_mode = WakeMode::kSpin;  ///< sleep, or sleep then spin to the deadline (see WakeMode)
  /// spin mode: the sleep ends this long before the deadline (us); 0 = calibrated from the wake-up
  /// latency measured at start and tracked while running; at most kMaxSpinFraction (0.2) x the period
  double spin_margin_us = 0.0;

  /// Gains part of the config.
  Gains gains() const;
  /// Timeout actually used (s).
  double watchdogTimeout() const { return watchdog_timeout_s > 0 ? watchdog_timeout_s : 3.0 / policy_hz; }
  /// Interpolation time actually used for a single target (s).
  double interpDuration() const { return interp_duration_s > 0 ? interp_duration_s : 1.0 / policy_hz; }
  /// Empty when valid, else a one-line message naming the field, the value and the allowed range.
  std::string validate() const;
};

// --- gain ceilings (hardening, issue 22) -------------------------------------------------------
// set_gains (and the config) refuse gains above these: about ten times the defaults, beyond which
// the laws only saturate (bang-bang torques against the limits) and no task is better served.
constexpr double kMaxJointKp = 6000.0;       ///< N m/rad
constexpr double kMaxJointKd = 500.0;        ///< N m s/rad
constexpr double kMaxCartKp = 10000.0;       ///< 1/s^2 (task-space natural frequency 100 rad/s)
constexpr double kMaxCartDampingRatio = 5.0;
constexpr double kMaxNullspaceKp = 1000.0;   ///< N m/rad
constexpr double kMaxNullspaceKd = 100.0;    ///< N m s/rad
constexpr double kMaxPosError = 1.0;         ///< m per tick
constexpr double kMaxRotError = 3.15;        ///< rad per tick (a half turn)
constexpr double kMaxJointError = 3.15;      ///< rad per tick
constexpr double kMaxEeSpeed = 5.0;          ///< m/s
constexpr double kMaxEeAngSpeed = 15.0;      ///< rad/s
constexpr double kMaxGripperKp = 100000.0;   ///< N/m
constexpr double kMaxGripperKd = 1000.0;     ///< N s/m

/// Empty when valid, else a one-line message naming the field and the problem.
std::string validateGains(const Gains& g);

/// Empty when margin_us is a valid spin_margin_us for a loop period of period_us (us), else a
/// one-line message naming the field, the value and the allowed range.
std::string validateSpinMargin(double margin_us, double period_us);

}  // namespace robo::rt
