// Rigid-body model of the controlled joints (pinocchio behind a pimpl, so only model.cpp includes
// pinocchio).
#pragma once

#include "robo_rt/robot.hpp"
#include "robo_rt/types.hpp"

#include <memory>
#include <string>
#include <vector>

namespace robo::rt {

/// Joint limits read from the URDF.
struct Limits {
  VecN q_min;    ///< lower position limits (rad)
  VecN q_max;    ///< upper position limits (rad)
  VecN dq_max;   ///< speed limits (rad/s)
  VecN tau_max;  ///< torque limits (N m)
};

/// Kinematics and dynamics of the controlled joints of a robot. Built from a URDF and a
/// RobotDescription; every URDF joint outside its groups (fingers, a humanoid's legs) is locked at 0,
/// so the model has exactly the n controlled DoF. compute(), kinematics() and tcpPoses() are
/// real-time safe (no allocation); one instance per thread.
class RobotModel {
 public:
  /// Parses `urdf_path` and keeps the description's joints (in the URDF's order). Throws
  /// std::runtime_error with a one-line message when the file, a joint or a TCP frame is missing.
  RobotModel(const std::string& urdf_path, const RobotDescription& robot);
  /// One group `arm` of `arm_joints` (base to tip) moving `tcp_frame`.
  RobotModel(const std::string& urdf_path, const std::vector<std::string>& arm_joints,
             const std::string& tcp_frame);
  ~RobotModel();
  RobotModel(const RobotModel&) = delete;
  RobotModel& operator=(const RobotModel&) = delete;

  /// A copy with its own workspace (for use on another thread).
  std::unique_ptr<RobotModel> clone() const;

  /// Controlled joints n.
  int nJoints() const;
  /// TCP frames K.
  int nTcps() const;
  /// Rotor inertia added to the diagonal of M (kg m^2), n values.
  void setArmature(const VecN& armature);
  /// TCP poses, Jacobians, M, Coriolis+gravity and gravity at (q, dq). No allocation.
  void compute(const VecN& q, const VecN& dq, Dynamics& out);
  /// TCP poses and Jacobians only (out's M, nle, g untouched). No allocation.
  void kinematics(const VecN& q, Dynamics& out);
  /// TCP poses only, K of them. No allocation.
  void tcpPoses(const VecN& q, std::array<Vec3, kMaxTcps>& world_p_tcp, std::array<Mat3, kMaxTcps>& world_R_tcp);
  /// Position, speed and torque limits from the URDF.
  const Limits& limits() const;
  /// The description the model was built from.
  const RobotDescription& robot() const;

 private:
  struct Impl;
  explicit RobotModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace robo::rt
