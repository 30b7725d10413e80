// Plain data types shared by the controller, the loop and the backends. SI units throughout
// (m, rad, s, N, N m); quaternions are (w, x, y, z); frames are named `world_T_tcp` style.
//
// Sizes: the number of controlled joints n (7 for a Panda, 17 for a G1 upper body) and of TCP frames
// K (1, or 2 for bimanual control) are run-time values, bounded at compile time by kMaxDof and
// kMaxTcps. Vectors and matrices are Eigen types with a dynamic size and a fixed *maximum* size: their
// storage is inline, so nothing on the loop's path ever allocates, whatever n is (a 32 x 32 matrix is
// 8 KB of stack). The price is that loops run over n at run time instead of being unrolled for 7.
#pragma once

#include <Eigen/Core>
#include <Eigen/Geometry>

#include <array>
#include <cstdint>

namespace robo::rt {

/// Most controlled joints (a G1's 29 body joints fit; Dex3 hands run on their own topics).
constexpr int kMaxDof = 32;
/// Most TCP frames with Cartesian targets (bimanual).
constexpr int kMaxTcps = 2;
/// Rows of the stacked task Jacobian (6 per TCP).
constexpr int kMaxTask = 6 * kMaxTcps;
/// Most waypoints one timestamped action chunk may carry (the command slot is fixed-size).
constexpr int kMaxWaypoints = 64;
/// Numbers in one waypoint: joint q[n] + width, or Cartesian (p[3], quat[4]) per TCP + width.
constexpr int kPointSize = (kMaxDof > 7 * kMaxTcps ? kMaxDof : 7 * kMaxTcps) + 1;

template <int MaxRows, int MaxCols>
using MatMax = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor, MaxRows, MaxCols>;
using VecN = Eigen::Matrix<double, Eigen::Dynamic, 1, Eigen::ColMajor, kMaxDof, 1>;    ///< one value per joint
using VecT = Eigen::Matrix<double, Eigen::Dynamic, 1, Eigen::ColMajor, kMaxTask, 1>;   ///< stacked task vector
using MatN = MatMax<kMaxDof, kMaxDof>;    ///< joint x joint
using MatT = MatMax<kMaxTask, kMaxTask>;  ///< task x task
using MatTN = MatMax<kMaxTask, kMaxDof>;  ///< task x joint (Jacobians)
using MatNT = MatMax<kMaxDof, kMaxTask>;  ///< joint x task
using Vec3 = Eigen::Matrix<double, 3, 1>;
using Vec6 = Eigen::Matrix<double, 6, 1>;
using Mat3 = Eigen::Matrix<double, 3, 3>;
using Quat = Eigen::Quaterniond;

/// Measured robot state, as a backend reports it once per tick.
struct RobotState {
  VecN q;             ///< joint positions (rad), n
  VecN dq;            ///< joint velocities (rad/s), n
  VecN tau_measured;  ///< measured joint torques where the backend has them (N m), n
  double gripper_width = 0.0;     ///< distance between the fingers (m)
  double gripper_speed = 0.0;     ///< d/dt gripper_width (m/s)

  RobotState() = default;
  explicit RobotState(int n) : q(VecN::Zero(n)), dq(VecN::Zero(n)), tau_measured(VecN::Zero(n)) {}
  /// Size the vectors for n joints (no allocation: the storage is inline).
  void resize(int n) {
    if (q.size() != n) *this = RobotState(n);
  }
};

/// How the controller's output reaches the joints.
enum class OutputMode : int {
  kTorque = 0,   ///< the backend applies `tau` (torque-controlled drives, MuJoCo motors)
  kJointPd = 1,  ///< the drives run PD: tau = kp (q - q_meas) + kd (dq - dq_meas) + tau_ff (Unitree)
};

/// What the controller asks a backend to apply for one tick.
struct JointCommand {
  /// total joint torques incl. gravity compensation (N m), n; with kJointPd, the torque the drives'
  /// PD gives at the measured state
  VecN tau;
  VecN gravity;  ///< the gravity part of tau, for backends whose robot adds it itself (N m)
  // --- kJointPd: the command the drives track (all n) -------------------------------------------
  bool drive_pd = false;  ///< true when the fields below are the command (OutputMode::kJointPd)
  VecN q;        ///< position target (rad)
  VecN dq;       ///< speed target (rad/s)
  VecN kp;       ///< stiffness (N m/rad)
  VecN kd;       ///< damping (N m s/rad)
  VecN tau_ff;   ///< feed-forward torque (N m): gravity + Coriolis at the measured state
  double gripper_force = 0.0;     ///< force on the finger-width coordinate, positive opens (N)
  double gripper_width_target = 0.0;  ///< for position-controlled grippers (libfranka) (m)

  JointCommand() = default;
  explicit JointCommand(int n)
      : tau(VecN::Zero(n)), gravity(VecN::Zero(n)), q(VecN::Zero(n)), dq(VecN::Zero(n)), kp(VecN::Zero(n)),
        kd(VecN::Zero(n)), tau_ff(VecN::Zero(n)) {}
};

/// Kinematics and dynamics at one configuration (computed once per tick).
struct Dynamics {
  int n_tcp = 1;                                  ///< TCP frames K
  std::array<Vec3, kMaxTcps> world_p_tcp{};       ///< TCP positions in the world (m)
  std::array<Mat3, kMaxTcps> world_R_tcp{};       ///< TCP orientations in the world
  MatTN J;   ///< stacked TCP Jacobians (6K x n), world-aligned, rows (v; w) per TCP; the columns of
             ///< joints whose group does not move that TCP are zero (m/rad, 1)
  MatN M;      ///< joint-space inertia incl. armature (kg m^2)
  MatN M_inv;  ///< its inverse, computed once per tick for the laws and the limits (1/(kg m^2))
  VecN nle;    ///< Coriolis + centrifugal + gravity torques (N m)
  VecN g;      ///< gravity torques (N m)

  Dynamics() { world_R_tcp.fill(Mat3::Identity()); }
  Dynamics(int n, int k)
      : n_tcp(k), J(MatTN::Zero(6 * k, n)), M(MatN::Identity(n, n)), M_inv(MatN::Identity(n, n)),
        nle(VecN::Zero(n)), g(VecN::Zero(n)) {
    world_p_tcp.fill(Vec3::Zero());
    world_R_tcp.fill(Mat3::Identity());
  }
};

/// Which space a target lives in.
enum class TargetSpace : int { kJoint = 0, kCartesian = 1 };

/// Where the numbers of a waypoint are: joint targets are q[0..n-1] then the width; Cartesian targets
/// are, per TCP k, p at x[7k..7k+2] and quat_wxyz at x[7k+3..7k+6], then the width at x[7K].
struct PointLayout {
  int n = 0;      ///< joints
  int n_tcp = 1;  ///< TCP frames
  int width(TargetSpace s) const { return s == TargetSpace::kJoint ? n : 7 * n_tcp; }
};

/// One timestamped target.
struct Waypoint {
  double t = 0.0;                          ///< controller-clock time at which the target is to be reached (s)
  std::array<double, kPointSize> x{};      ///< see PointLayout
};

/// A command as it travels through the lock-free slot: one target (n = 1) or a chunk (n <= 64).
struct Command {
  std::uint64_t seq = 0;             ///< increases by one per accepted command
  TargetSpace space = TargetSpace::kCartesian;
  double t_arrival = 0.0;            ///< controller-clock time the command was accepted (s)
  bool single = false;               ///< one target (watchdog counts from arrival) vs a chunk (from its end)
  int n = 0;                         ///< number of waypoints used
  std::array<Waypoint, kMaxWaypoints> wp{};
};

/// Controller mode, readable from Python.
enum class Mode : int { kIdle = 0, kJoint = 1, kCartesian = 2, kHold = 3 };

inline const char* modeName(Mode m) {
  switch (m) {
    case Mode::kIdle: return "idle";
    case Mode::kJoint: return "joint";
    case Mode::kCartesian: return "cartesian";
    case Mode::kHold: return "hold";
  }
  return "?";
}

}  // namespace robo::rt
