// Control laws. Each law only maps (state, model, reference, gains) to joint torques; the
// Controller owns everything safety-related (validation, watchdog, limits), and the base class
// owns the finite checks, so a law cannot hand a NaN to the actuators.
#pragma once

#include "robo_rt/config.hpp"
#include "robo_rt/trajectory.hpp"
#include "robo_rt/types.hpp"

namespace robo::rt {

/// Inputs of one tick.
struct LawInput {
  const RobotState& state;
  const Dynamics& dyn;
  const Reference& ref;
  const Gains& gains;
  const Vec7& posture;      ///< null-space posture / hold configuration (rad)
  double hold_damping_scale;
  const Vec7& dq_max;       ///< joint speed limits: the joint velocity feed-forward is clipped to them (rad/s)
};

/// What a law reports besides torque.
struct LawInfo {
  bool reference_limited = false;  ///< the pose error was clipped this tick
};

class ControlLaw {
 public:
  virtual ~ControlLaw() = default;
  /// Torques for one tick (N m). Returns false, and leaves `tau` untouched, when an input or the
  /// result is not finite; the caller then falls back to damped gravity compensation.
  bool compute(const LawInput& in, Vec7& tau, LawInfo& info);

 protected:
  virtual void computeImpl(const LawInput& in, Vec7& tau, LawInfo& info) = 0;
};

/// tau = Kp clip(q_ref - q) + Kd (clip(dq_ref) - dq) + C(q, dq) dq + g(q); the error is clipped
/// per joint to max_joint_error and the speed feed-forward to the joint speed limits.
class JointImpedance final : public ControlLaw {
 protected:
  void computeImpl(const LawInput& in, Vec7& tau, LawInfo& info) override;
};

/// Watchdog hold: joint impedance to `posture` (the pose captured at the trip) with damping
/// scaled by hold_damping_scale. Never zero torque.
class HoldPose final : public ControlLaw {
 protected:
  void computeImpl(const LawInput& in, Vec7& tau, LawInfo& info) override;
};

/// Operational-space control: tau = J^T Lambda (kp e + kd (v_ref - v)) + N^T tau_posture + nle,
/// Lambda = (J M^-1 J^T)^-1 with an eigenvalue floor, N the dynamically consistent null-space
/// projector; the pose error e is clipped (reference limiting) like SERL's Cartesian impedance.
class OperationalSpace final : public ControlLaw {
 public:
  explicit OperationalSpace(double min_eig) : min_eig_(min_eig) {}

 protected:
  void computeImpl(const LawInput& in, Vec7& tau, LawInfo& info) override;

 private:
  double min_eig_;
};

/// Orientation error as a world-frame rotation vector: log(R_ref R^T) (rad).
Vec3 rotationError(const Mat3& R_ref, const Mat3& R);

/// Gripper width PD: force (N, positive opens), clipped to +-max_force.
double gripperForce(double width_ref, double width, double speed, double kp, double kd, double max_force);

}  // namespace robo::rt
