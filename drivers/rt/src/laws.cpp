#include "robo_rt/laws.hpp"

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>

namespace robo::rt {

bool ControlLaw::compute(const LawInput& in, Vec7& tau, LawInfo& info) {
  if (!in.state.q.allFinite() || !in.state.dq.allFinite() || !in.dyn.nle.allFinite()) return false;
  Vec7 out = Vec7::Zero();
  computeImpl(in, out, info);
  if (!out.allFinite()) return false;
  tau = out;
  return true;
}

void JointImpedance::computeImpl(const LawInput& in, Vec7& tau, LawInfo& info) {
  const Vec7 kp = Eigen::Map<const Vec7>(in.gains.joint_kp.data());
  const Vec7 kd = Eigen::Map<const Vec7>(in.gains.joint_kd.data());
  const double lim = in.gains.max_joint_error;
  const Vec7 e = in.ref.q - in.state.q;
  const Vec7 e_clipped = e.cwiseMax(-lim).cwiseMin(lim);  // reference limiting, per joint
  if (e_clipped != e) info.reference_limited = true;
  const Vec7 dq_ref = in.ref.dq.cwiseMax(-in.dq_max).cwiseMin(in.dq_max);
  tau = kp.cwiseProduct(e_clipped) + kd.cwiseProduct(dq_ref - in.state.dq) + in.dyn.nle;
}

void HoldPose::computeImpl(const LawInput& in, Vec7& tau, LawInfo&) {
  const Vec7 kp = Eigen::Map<const Vec7>(in.gains.joint_kp.data());
  const Vec7 kd = Eigen::Map<const Vec7>(in.gains.joint_kd.data()) * in.hold_damping_scale;
  tau = kp.cwiseProduct(in.posture - in.state.q) - kd.cwiseProduct(in.state.dq) + in.dyn.nle;
}

Vec3 rotationError(const Mat3& R_ref, const Mat3& R) {
  const Eigen::AngleAxisd aa(Mat3(R_ref * R.transpose()));
  return aa.angle() * aa.axis();
}

void OperationalSpace::computeImpl(const LawInput& in, Vec7& tau, LawInfo& info) {
  const Gains& g = in.gains;
  const Dynamics& d = in.dyn;

  // Pose error, clipped per tick (reference limiting).
  Vec3 e_pos = in.ref.p - d.world_p_tcp;
  Vec3 e_rot = rotationError(in.ref.quat.toRotationMatrix(), d.world_R_tcp);
  const double n_pos = e_pos.norm(), n_rot = e_rot.norm();
  if (n_pos > g.max_pos_error) {
    e_pos *= g.max_pos_error / n_pos;
    info.reference_limited = true;
  }
  if (n_rot > g.max_rot_error) {
    e_rot *= g.max_rot_error / n_rot;
    info.reference_limited = true;
  }

  // Task-space inertia Lambda = (J M^-1 J^T)^-1, eigenvalues floored near singularities.
  const Mat76 M_inv_Jt = d.M_inv * d.J.transpose();
  const Mat6 lambda_inv = d.J * M_inv_Jt;
  const Eigen::SelfAdjointEigenSolver<Mat6> eig(lambda_inv);
  const Vec6 inv_vals = eig.eigenvalues().cwiseMax(min_eig_).cwiseInverse();
  const Mat6 lambda = eig.eigenvectors() * inv_vals.asDiagonal() * eig.eigenvectors().transpose();

  // Desired task acceleration: PD on the clipped error plus the (clipped) velocity feed-forward.
  Vec3 v_ref = in.ref.v, w_ref = in.ref.w;
  if (v_ref.norm() > g.max_ee_speed) {
    v_ref *= g.max_ee_speed / v_ref.norm();
    info.reference_limited = true;
  }
  if (w_ref.norm() > g.max_ee_ang_speed) {
    w_ref *= g.max_ee_ang_speed / w_ref.norm();
    info.reference_limited = true;
  }
  const Vec6 v = d.J * in.state.dq;
  const double kd_pos = 2.0 * g.cart_damping_ratio * std::sqrt(g.cart_kp_pos);
  const double kd_rot = 2.0 * g.cart_damping_ratio * std::sqrt(g.cart_kp_rot);
  Vec6 a;
  a.head<3>() = g.cart_kp_pos * e_pos + kd_pos * (v_ref - v.head<3>());
  a.tail<3>() = g.cart_kp_rot * e_rot + kd_rot * (w_ref - v.tail<3>());
  const Vec6 F = lambda * a;

  // Posture in the dynamically consistent null space: N^T = I - J^T Jbar^T, Jbar = M^-1 J^T Lambda.
  const Mat76 J_bar = M_inv_Jt * lambda;
  const Mat7 N_t = Mat7::Identity() - d.J.transpose() * J_bar.transpose();
  const Vec7 tau_posture = g.nullspace_kp * (in.posture - in.state.q) - g.nullspace_kd * in.state.dq;

  tau = d.J.transpose() * F + N_t * tau_posture + d.nle;
}

double gripperForce(double width_ref, double width, double speed, double kp, double kd, double max_force) {
  const double f = kp * (width_ref - width) - kd * speed;
  if (!std::isfinite(f)) return 0.0;
  return std::clamp(f, -max_force, max_force);
}

}  // namespace robo::rt
