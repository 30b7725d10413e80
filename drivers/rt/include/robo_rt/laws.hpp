// Control laws. Each law only maps (state, model, reference, gains) to joint torques (or, for PD
// drives, to the configuration they track); the Controller owns everything safety-related
// (validation, watchdog, limits), and the base class owns the finite checks, so a law cannot hand a
// NaN to the actuators.
#pragma once

#include "robo_rt/config.hpp"
#include "robo_rt/model.hpp"
#include "robo_rt/trajectory.hpp"
#include "robo_rt/types.hpp"

namespace robo::rt {

/// Inputs of one tick.
struct LawInput {
  const RobotState& state;
  const Dynamics& dyn;
  const Reference& ref;
  const Gains& gains;
  const VecN& posture;      ///< null-space posture / hold configuration (rad)
  double hold_damping_scale;
  const VecN& dq_max;       ///< joint speed limits: the joint velocity feed-forward is clipped to them (rad/s)
};

/// What a law reports besides torque.
struct LawInfo {
  bool reference_limited = false;  ///< the pose error was clipped this tick
};

/// Joint stiffness and damping of the gains, n values.
VecN jointKp(const Gains& g, int n);
VecN jointKd(const Gains& g, int n);

class ControlLaw {
 public:
  virtual ~ControlLaw() = default;
  /// Torques for one tick (N m). Returns false, and leaves `tau` untouched, when an input or the
  /// result is not finite; the caller then falls back to damped gravity compensation.
  bool compute(const LawInput& in, VecN& tau, LawInfo& info);

 protected:
  virtual void computeImpl(const LawInput& in, VecN& tau, LawInfo& info) = 0;
};

/// tau = Kp clip(q_ref - q) + Kd (clip(dq_ref) - dq) + C(q, dq) dq + g(q); the error is clipped
/// per joint to max_joint_error and the speed feed-forward to the joint speed limits.
class JointImpedance final : public ControlLaw {
 protected:
  void computeImpl(const LawInput& in, VecN& tau, LawInfo& info) override;
};

/// Watchdog hold: joint impedance to `posture` (the pose captured at the trip) with damping
/// scaled by hold_damping_scale. Never zero torque.
class HoldPose final : public ControlLaw {
 protected:
  void computeImpl(const LawInput& in, VecN& tau, LawInfo& info) override;
};

/// Operational-space control of K TCPs at once: tau = J^T Lambda (kp e + kd (v_ref - v)) + N^T
/// tau_posture + nle, J the stacked (6K x n), group-masked TCP Jacobian, Lambda = (J M^-1 J^T)^-1
/// with an eigenvalue floor, N the dynamically consistent null-space projector (the joints of groups
/// without a TCP hold their posture through it); each TCP's pose error is clipped (reference
/// limiting) like SERL's Cartesian impedance.
class OperationalSpace final : public ControlLaw {
 public:
  explicit OperationalSpace(double min_eig) : min_eig_(min_eig) {}

 protected:
  void computeImpl(const LawInput& in, VecN& tau, LawInfo& info) override;

 private:
  double min_eig_;
};

/// Cartesian targets on PD drives (OutputMode::kJointPd): each tick moves the commanded
/// configuration q_cmd toward the TCP references by damped least squares on the group-masked
/// Jacobian at q_cmd (not at the measured q, so tracking error under load never winds the command
/// up): dq = J^T (J J^T + lambda^2 I)^-1 (v_ref + gain e) + (I - J^+ J) posture_gain (posture - q_cmd),
/// clipped to the speed limits; q_cmd += dq dt, kept `margin` inside the position limits.
class DifferentialIk {
 public:
  DifferentialIk(int n, int n_tcp, double gain, double damping, double posture_gain)
      : kin_(n, n_tcp), gain_(gain), damping_(damping), posture_gain_(posture_gain) {}
  /// One step. Returns false, and leaves q_cmd / dq_cmd untouched, when a result is not finite.
  bool step(RobotModel& model, const Reference& ref, const Gains& g, const VecN& posture, const VecN& dq_max,
            const Limits& limits, double margin, double dt, VecN& q_cmd, VecN& dq_cmd, LawInfo& info);

 private:
  Dynamics kin_;  // kinematics at q_cmd (workspace, sized once)
  double gain_, damping_, posture_gain_;
};

/// Orientation error as a world-frame rotation vector: log(R_ref R^T) (rad).
Vec3 rotationError(const Mat3& R_ref, const Mat3& R);

/// Gripper width PD: force (N, positive opens), clipped to +-max_force.
double gripperForce(double width_ref, double width, double speed, double kp, double kd, double max_force);

}  // namespace robo::rt
