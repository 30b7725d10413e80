// Plain data types shared by the controller, the loop and the backends. SI units throughout
// (m, rad, s, N, N m); quaternions are (w, x, y, z); frames are named `world_T_tcp` style.
#pragma once

#include <Eigen/Core>
#include <Eigen/Geometry>

#include <array>
#include <cstdint>

namespace robo::rt {

/// Number of actuated arm joints (Franka Panda / FR3, one Unitree G1 arm).
constexpr int kDof = 7;
/// Most waypoints one timestamped action chunk may carry (the command slot is fixed-size).
constexpr int kMaxWaypoints = 64;

using Vec3 = Eigen::Matrix<double, 3, 1>;
using Vec6 = Eigen::Matrix<double, 6, 1>;
using Vec7 = Eigen::Matrix<double, kDof, 1>;
using Mat3 = Eigen::Matrix<double, 3, 3>;
using Mat6 = Eigen::Matrix<double, 6, 6>;
using Mat7 = Eigen::Matrix<double, kDof, kDof>;
using Mat67 = Eigen::Matrix<double, 6, kDof>;
using Mat76 = Eigen::Matrix<double, kDof, 6>;
using Quat = Eigen::Quaterniond;

/// Measured robot state, as a backend reports it once per tick.
struct RobotState {
  Vec7 q = Vec7::Zero();          ///< joint positions (rad)
  Vec7 dq = Vec7::Zero();         ///< joint velocities (rad/s)
  Vec7 tau_measured = Vec7::Zero();  ///< measured joint torques where the backend has them (N m)
  double gripper_width = 0.0;     ///< distance between the fingers (m)
  double gripper_speed = 0.0;     ///< d/dt gripper_width (m/s)
};

/// What the controller asks a backend to apply for one tick.
struct JointCommand {
  Vec7 tau = Vec7::Zero();        ///< total joint torques incl. gravity compensation (N m)
  Vec7 gravity = Vec7::Zero();    ///< the gravity part of tau, for backends whose robot adds it itself (N m)
  double gripper_force = 0.0;     ///< force on the finger-width coordinate, positive opens (N)
  double gripper_width_target = 0.0;  ///< for position-controlled grippers (libfranka) (m)
};

/// Kinematics and dynamics of the arm at one configuration (computed once per tick).
struct Dynamics {
  Vec3 world_p_tcp = Vec3::Zero();       ///< TCP position in the world (m)
  Mat3 world_R_tcp = Mat3::Identity();   ///< TCP orientation in the world
  Mat67 J = Mat67::Zero();   ///< TCP Jacobian, world-aligned, rows (v; w) (m/rad, 1)
  Mat7 M = Mat7::Identity();  ///< joint-space inertia incl. armature (kg m^2)
  Mat7 M_inv = Mat7::Identity();  ///< its inverse, computed once per tick for the laws and the limits (1/(kg m^2))
  Vec7 nle = Vec7::Zero();   ///< Coriolis + centrifugal + gravity torques (N m)
  Vec7 g = Vec7::Zero();     ///< gravity torques (N m)
};

/// Which space a target lives in.
enum class TargetSpace : int { kJoint = 0, kCartesian = 1 };

/// One timestamped target: joint (q[7], width) or Cartesian (pos[3], quat_wxyz[4], width).
/// Eight numbers either way, so a chunk is a fixed-size array.
struct Waypoint {
  double t = 0.0;                    ///< controller-clock time at which the target is to be reached (s)
  std::array<double, 8> x{};         ///< joint: q0..q6, width; Cartesian: px,py,pz, qw,qx,qy,qz, width
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
