// Rigid-body model of the arm (pinocchio behind a pimpl, so only model.cpp includes pinocchio).
#pragma once

#include "robo_rt/types.hpp"

#include <memory>
#include <string>
#include <vector>

namespace robo::rt {

/// Joint limits read from the URDF.
struct Limits {
  Vec7 q_min = Vec7::Constant(-1e9);   ///< lower position limits (rad)
  Vec7 q_max = Vec7::Constant(1e9);    ///< upper position limits (rad)
  Vec7 dq_max = Vec7::Constant(1e9);   ///< speed limits (rad/s)
  Vec7 tau_max = Vec7::Constant(1e9);  ///< torque limits (N m)
};

/// Kinematics and dynamics of a 7-joint arm. Built from a URDF; every joint that is not one of
/// the arm joints (e.g. finger slides) is locked at 0, so the model has exactly 7 DoF.
/// compute() and tcpPose() are real-time safe (no allocation); one instance per thread.
class RobotModel {
 public:
  /// Parses `urdf_path`, keeps `arm_joints` (7 names, base to tip) and locks every other joint.
  /// Throws std::runtime_error with a one-line message when the file, a joint or `tcp_frame` is
  /// missing.
  RobotModel(const std::string& urdf_path, const std::vector<std::string>& arm_joints,
             const std::string& tcp_frame);
  ~RobotModel();
  RobotModel(const RobotModel&) = delete;
  RobotModel& operator=(const RobotModel&) = delete;

  /// A copy with its own workspace (for use on another thread).
  std::unique_ptr<RobotModel> clone() const;

  /// Rotor inertia added to the diagonal of M (kg m^2).
  void setArmature(const Vec7& armature);
  /// TCP pose, Jacobian, M, Coriolis+gravity and gravity at (q, dq). No allocation.
  void compute(const Vec7& q, const Vec7& dq, Dynamics& out);
  /// TCP pose only. No allocation.
  void tcpPose(const Vec7& q, Vec3& world_p_tcp, Mat3& world_R_tcp);
  /// Position, speed and torque limits from the URDF.
  const Limits& limits() const;

 private:
  struct Impl;
  explicit RobotModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace robo::rt
