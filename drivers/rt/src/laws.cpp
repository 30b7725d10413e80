#include "robo_rt/laws.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>

namespace robo::rt {

VecN jointKp(const Gains& g, int n) { return Eigen::Map<const Eigen::VectorXd>(g.joint_kp.data(), n); }
VecN jointKd(const Gains& g, int n) { return Eigen::Map<const Eigen::VectorXd>(g.joint_kd.data(), n); }

bool ControlLaw::compute(const LawInput& in, VecN& tau, LawInfo& info) {
  if (!in.state.q.allFinite() || !in.state.dq.allFinite() || !in.dyn.nle.allFinite()) return false;
  VecN out = VecN::Zero(in.state.q.size());
  computeImpl(in, out, info);
  if (!out.allFinite()) return false;
  tau = out;
  return true;
}

void JointImpedance::computeImpl(const LawInput& in, VecN& tau, LawInfo& info) {
  const int n = static_cast<int>(in.state.q.size());
  const VecN kp = jointKp(in.gains, n), kd = jointKd(in.gains, n);
  const double lim = in.gains.max_joint_error;
  const VecN e = in.ref.q - in.state.q;
  const VecN e_clipped = e.cwiseMax(-lim).cwiseMin(lim);  // reference limiting, per joint
  if (e_clipped != e) info.reference_limited = true;
  const VecN dq_ref = in.ref.dq.cwiseMax(-in.dq_max).cwiseMin(in.dq_max);
  tau = kp.cwiseProduct(e_clipped) + kd.cwiseProduct(dq_ref - in.state.dq) + in.dyn.nle;
}

void HoldPose::computeImpl(const LawInput& in, VecN& tau, LawInfo&) {
  const int n = static_cast<int>(in.state.q.size());
  const VecN kp = jointKp(in.gains, n), kd = jointKd(in.gains, n) * in.hold_damping_scale;
  tau = kp.cwiseProduct(in.posture - in.state.q) - kd.cwiseProduct(in.state.dq) + in.dyn.nle;
}

Vec3 rotationError(const Mat3& R_ref, const Mat3& R) {
  const Eigen::AngleAxisd aa(Mat3(R_ref * R.transpose()));
  return aa.angle() * aa.axis();
}

namespace {

// Clip v to at most max_norm; true when it was clipped.
bool clipNorm(Vec3& v, double max_norm) {
  const double n = v.norm();
  if (n <= max_norm) return false;
  v *= max_norm / n;
  return true;
}

// Stacked pose error (6K): per TCP (position; orientation), each clipped per tick (reference limiting).
VecT poseError(const Reference& ref, const Dynamics& d, const Gains& g, LawInfo& info) {
  VecT e(6 * d.n_tcp);
  for (int k = 0; k < d.n_tcp; ++k) {
    Vec3 e_pos = ref.p[k] - d.world_p_tcp[k];
    Vec3 e_rot = rotationError(ref.quat[k].toRotationMatrix(), d.world_R_tcp[k]);
    if (clipNorm(e_pos, g.max_pos_error)) info.reference_limited = true;
    if (clipNorm(e_rot, g.max_rot_error)) info.reference_limited = true;
    e.segment<3>(6 * k) = e_pos;
    e.segment<3>(6 * k + 3) = e_rot;
  }
  return e;
}

// Stacked velocity feed-forward (6K), each TCP's linear and angular part clipped.
VecT velocityReference(const Reference& ref, int n_tcp, const Gains& g, LawInfo& info) {
  VecT v(6 * n_tcp);
  for (int k = 0; k < n_tcp; ++k) {
    Vec3 lin = ref.v[k], ang = ref.w[k];
    if (clipNorm(lin, g.max_ee_speed)) info.reference_limited = true;
    if (clipNorm(ang, g.max_ee_ang_speed)) info.reference_limited = true;
    v.segment<3>(6 * k) = lin;
    v.segment<3>(6 * k + 3) = ang;
  }
  return v;
}

}  // namespace

void OperationalSpace::computeImpl(const LawInput& in, VecN& tau, LawInfo& info) {
  const Gains& g = in.gains;
  const Dynamics& d = in.dyn;
  const int n = static_cast<int>(in.state.q.size()), m = 6 * d.n_tcp;

  const VecT e = poseError(in.ref, d, g, info);

  // Task-space inertia Lambda = (J M^-1 J^T)^-1, eigenvalues floored near singularities.
  const MatNT M_inv_Jt = d.M_inv * d.J.transpose();
  const MatT lambda_inv = d.J * M_inv_Jt;
  const Eigen::SelfAdjointEigenSolver<MatT> eig(lambda_inv);
  const VecT inv_vals = eig.eigenvalues().cwiseMax(min_eig_).cwiseInverse();
  const MatT lambda = eig.eigenvectors() * inv_vals.asDiagonal() * eig.eigenvectors().transpose();

  // Desired task acceleration: PD on the clipped error plus the (clipped) velocity feed-forward.
  const VecT v_ref = velocityReference(in.ref, d.n_tcp, g, info);
  const VecT v = d.J * in.state.dq;
  const double kd_pos = 2.0 * g.cart_damping_ratio * std::sqrt(g.cart_kp_pos);
  const double kd_rot = 2.0 * g.cart_damping_ratio * std::sqrt(g.cart_kp_rot);
  VecT a(m);
  for (int k = 0; k < d.n_tcp; ++k) {
    a.segment<3>(6 * k) = g.cart_kp_pos * e.segment<3>(6 * k) + kd_pos * (v_ref.segment<3>(6 * k) - v.segment<3>(6 * k));
    a.segment<3>(6 * k + 3) =
        g.cart_kp_rot * e.segment<3>(6 * k + 3) + kd_rot * (v_ref.segment<3>(6 * k + 3) - v.segment<3>(6 * k + 3));
  }
  const VecT F = lambda * a;

  // Posture in the dynamically consistent null space: N^T = I - J^T Jbar^T, Jbar = M^-1 J^T Lambda.
  const MatNT J_bar = M_inv_Jt * lambda;
  const MatN N_t = MatN::Identity(n, n) - d.J.transpose() * J_bar.transpose();
  const VecN tau_posture = g.nullspace_kp * (in.posture - in.state.q) - g.nullspace_kd * in.state.dq;

  tau = d.J.transpose() * F + N_t * tau_posture + d.nle;
}

bool DifferentialIk::step(RobotModel& model, const Reference& ref, const Gains& g, const VecN& posture,
                          const VecN& dq_max, const Limits& limits, double margin, double dt, VecN& q_cmd,
                          VecN& dq_cmd, LawInfo& info) {
  const int n = static_cast<int>(q_cmd.size());
  model.kinematics(q_cmd, kin_);
  const VecT e = poseError(ref, kin_, g, info);
  const VecT v = velocityReference(ref, kin_.n_tcp, g, info) + gain_ * e;
  const MatTN& J = kin_.J;
  MatT A = J * J.transpose();
  A.diagonal().array() += damping_ * damping_;
  const Eigen::LLT<MatT> llt(A);
  VecN dq = J.transpose() * llt.solve(v);
  // Posture in the null space of the damped pseudo-inverse: (I - J^T A^-1 J) (posture pull).
  const VecN pull = posture_gain_ * (posture - q_cmd);
  dq += pull - J.transpose() * llt.solve(J * pull);
  dq = dq.cwiseMax(-dq_max).cwiseMin(dq_max);
  VecN q_next = q_cmd + dq * dt;
  for (int i = 0; i < n; ++i) {
    const double lo = limits.q_min[i] + margin, hi = limits.q_max[i] - margin;
    const double clamped = std::clamp(q_next[i], std::min(lo, hi), std::max(lo, hi));
    if (clamped != q_next[i]) dq[i] = 0.0;  // held at the margin: no speed toward the limit
    q_next[i] = clamped;
  }
  if (!q_next.allFinite() || !dq.allFinite()) return false;
  q_cmd = q_next;
  dq_cmd = dq;
  return true;
}

double gripperForce(double width_ref, double width, double speed, double kp, double kd, double max_force) {
  const double f = kp * (width_ref - width) - kd * speed;
  if (!std::isfinite(f)) return 0.0;
  return std::clamp(f, -max_force, max_force);
}

}  // namespace robo::rt
