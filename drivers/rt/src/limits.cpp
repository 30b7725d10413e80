// The safety layer's last word on every tick, after the control law: position, speed, workspace,
// torque and torque-rate limits and the joint-limit braking (issue 22), for torque drives
// (applyLimits) and for PD drives (applyDriveLimits, the same limits expressed on the command the
// drives track).
#include "robo_rt/controller.hpp"

#include <algorithm>
#include <cmath>

namespace robo::rt {

namespace {

// Joint-space braking of the whole arm (issue 22): tau = nle - M dq / T decelerates every joint
// along its current direction at once (qdd = -dq / T, so no joint's braking fights another's through
// the inertia coupling). T is the shortest time, at least t_min, that keeps each torque within
// +-tau_plan (a joint whose gravity alone exceeds it does not bound T) and whose braking torques,
// decaying with the speeds (d tau / dt = M dq / T^2 at the start), stay within the torque-rate limit.
double jointSpaceBrake(const MatN& M, const VecN& nle, const VecN& dq, const VecN& tau_plan, double rate_limit,
                       double t_min, VecN& tau_brake) {
  const VecN momentum = M * dq;
  double T = std::max(t_min, std::sqrt(momentum.cwiseAbs().maxCoeff() / rate_limit));
  for (int j = 0; j < dq.size(); ++j) {
    const double room = momentum[j] > 0.0 ? tau_plan[j] + nle[j] : tau_plan[j] - nle[j];
    if (room > 0.0) T = std::max(T, std::abs(momentum[j]) / room);
  }
  tau_brake = nle - momentum / T;
  return T;
}

}  // namespace

void Controller::applyLimits(const RobotState& s, VecN& tau) {
  const Limits& L = model_->limits();
  bool joint_zone = false, too_fast = false, clipped = false, rate_clipped = false;
  for (int i = 0; i < n_; ++i) {
    // Position: a spring-damper pushes back inside the margin zone next to each limit.
    const double lo = L.q_min[i] + cfg_.joint_limit_margin, hi = L.q_max[i] - cfg_.joint_limit_margin;
    if (s.q[i] < lo) {
      tau[i] += cfg_.joint_limit_kp * (lo - s.q[i]) - cfg_.joint_limit_kd * std::min(s.dq[i], 0.0);
      joint_zone = true;
    } else if (s.q[i] > hi) {
      tau[i] += cfg_.joint_limit_kp * (hi - s.q[i]) - cfg_.joint_limit_kd * std::max(s.dq[i], 0.0);
      joint_zone = true;
    }
    // Speed: brake the part above the limit.
    const double vmax = L.dq_max[i] * cfg_.velocity_limit_scale;
    if (std::abs(s.dq[i]) > vmax) {
      tau[i] -= cfg_.velocity_limit_kd * (s.dq[i] - std::copysign(vmax, s.dq[i]));
      too_fast = true;
    }
  }
  // Workspace box: a wall spring-damper on each measured TCP.
  bool outside = false;
  for (int k = 0; k < n_tcp_; ++k) {
    const Vec3& p = dyn_.world_p_tcp[k];
    const Vec3 inside = p.cwiseMax(box_min_).cwiseMin(box_max_);
    if (inside == p) continue;
    const auto Jv = dyn_.J.middleRows(6 * k, 3);
    const Vec3 v = Jv * s.dq;
    Vec3 F = cfg_.workspace_kp * (inside - p);
    for (int c = 0; c < 3; ++c) {
      const double out_dir = p[c] - inside[c];
      if (out_dir * v[c] > 0.0) F[c] -= cfg_.workspace_kd * v[c];
    }
    tau += Jv.transpose() * F;
    outside = true;
  }
  if (outside) events_.add(Event::workspace_active);
  // Torque and torque rate.
  const double max_step = cfg_.torque_rate_limit * dt_;
  for (int i = 0; i < n_; ++i) {
    const double tmax = L.tau_max[i] * cfg_.torque_limit_scale;
    const double clamped = std::clamp(tau[i], -tmax, tmax);
    if (clamped != tau[i]) clipped = true;
    const double rated = std::clamp(clamped, tau_prev_[i] - max_step, tau_prev_[i] + max_step);
    if (rated != clamped) rate_clipped = true;
    tau[i] = std::clamp(rated, -tmax, tmax);
  }
  if (brakeBeforeLimits(s, tau)) events_.add(Event::joint_brake_active);
  if (joint_zone) events_.add(Event::joint_limit_active);
  if (too_fast) events_.add(Event::velocity_limit_active);
  if (clipped) events_.add(Event::torque_clipped);
  if (rate_clipped) events_.add(Event::torque_rate_clipped);
}

// Joint-limit braking (issue 22), the last word on the torques. From the state one tick ahead under
// this tick's torques, the arm must still be able to stop every joint joint_brake_margin inside its
// hard limits by braking in joint space: first the torques move to the braking torques at the
// torque-rate limit, meanwhile each joint accelerating at most as much as any torques between this
// tick's and the braking ones can push it (the inertia coupling included); then the joint-space brake
// (planned with joint_brake_torque_fraction of the torque limits) stops them. If the arm could not,
// or a joint would pass its speed limit (beyond which the plan's dynamics do not hold), it brakes
// now instead. The plan depends on speeds, accelerations, inertia, gravity and the torques already
// applied, never on the gains. Torques stay within the torque and torque-rate limits. Returns true if
// the arm braked.
bool Controller::brakeBeforeLimits(const RobotState& s, VecN& tau) const {
  const Limits& L = model_->limits();
  const VecN tau_max = L.tau_max * cfg_.torque_limit_scale;
  const VecN tau_plan = tau_max * cfg_.joint_brake_torque_fraction;
  const double t_min = 5.0 * dt_;  // the discrete brake qdd = -dq / T is well damped for T >= a few ticks
  const MatN& M_inv = dyn_.M_inv;
  const VecN qdd = M_inv * (tau - dyn_.nle);
  if (!qdd.allFinite()) return false;  // broken model: the torque clip still holds
  const VecN dq1 = s.dq + qdd * dt_;
  const VecN q1 = s.q + s.dq * dt_ + 0.5 * dt_ * dt_ * qdd;
  VecN tau_brake;
  const double t_stop = jointSpaceBrake(dyn_.M, dyn_.nle, dq1, tau_plan, cfg_.torque_rate_limit, t_min, tau_brake);
  const VecN change = tau_brake - tau;
  const double t_ramp = change.cwiseAbs().maxCoeff() / cfg_.torque_rate_limit;
  bool can_stop = true;
  for (int i = 0; i < n_ && can_stop; ++i) {
    can_stop = std::abs(dq1[i]) <= dq_max_[i];
    for (const double dir : {1.0, -1.0}) {  // toward the upper, then the lower limit
      if (!can_stop) break;
      // largest acceleration toward the limit while the torques ramp from `tau` to `tau_brake`
      double a = dir * qdd[i];
      for (int j = 0; j < n_; ++j) a += std::max(0.0, dir * M_inv(i, j) * change[j]);
      a = std::max(a, 0.0);
      const double v = dir * dq1[i];  // speed toward the limit (negative: away, but maybe turning)
      const double v_ramp = v + a * t_ramp;
      const double travel = std::max(0.0, v * t_ramp + 0.5 * a * t_ramp * t_ramp) + std::max(0.0, v) * dt_ +
                            std::max(0.0, v_ramp) * t_stop;
      const double room = dir > 0.0 ? L.q_max[i] - cfg_.joint_brake_margin - q1[i]
                                    : q1[i] - L.q_min[i] - cfg_.joint_brake_margin;
      can_stop = travel == 0.0 || travel < room;
    }
  }
  if (can_stop) return false;
  jointSpaceBrake(dyn_.M, dyn_.nle, s.dq, tau_plan, cfg_.torque_rate_limit, t_min, tau_brake);
  const double max_step = cfg_.torque_rate_limit * dt_;
  for (int j = 0; j < n_; ++j) {
    tau[j] = std::clamp(std::clamp(tau_brake[j], tau_prev_[j] - max_step, tau_prev_[j] + max_step), -tau_max[j],
                        tau_max[j]);
  }
  return true;
}

// The limits on a PD command (the drives apply tau = kp (q - q_meas) + kd (dq - dq_meas) + tau_ff at
// their own rate): the position target stays joint_limit_margin inside the limits and moves at most
// at the joint speed limit; a joint faster than its limit gets no speed target (the drive's damping
// brakes it); the feed-forward stays within the torque and torque-rate limits; a joint that could no
// longer stop before its hard limit (planned with joint_brake_torque_fraction of its torque limit and
// its own inertia) gets a target that brakes it at that torque; and the PD torque at the measured
// state stays within the torque limit (the target is pulled toward the joint when it would not).
void Controller::applyDriveLimits(const RobotState& s, JointCommand& out) {
  const Limits& L = model_->limits();
  bool joint_zone = false, too_fast = false, clipped = false, rate_clipped = false, braked = false;
  bool limited = false;
  const double max_step = cfg_.torque_rate_limit * dt_;
  for (int i = 0; i < n_; ++i) {
    const double tmax = L.tau_max[i] * cfg_.torque_limit_scale;
    const double kp = out.kp[i], kd = out.kd[i];
    // position target inside the soft zone, moving at most at the speed limit
    const double lo = L.q_min[i] + cfg_.joint_limit_margin, hi = L.q_max[i] - cfg_.joint_limit_margin;
    double q = std::clamp(out.q[i], std::min(lo, hi), std::max(lo, hi));
    if (s.q[i] < lo || s.q[i] > hi) joint_zone = true;
    const double step = dq_max_[i] * dt_;
    const double q_rated = std::clamp(q, q_des_prev_[i] - step, q_des_prev_[i] + step);
    if (q_rated != q) limited = true;
    q = q_rated;
    double dq = std::clamp(out.dq[i], -dq_max_[i], dq_max_[i]);
    if (std::abs(s.dq[i]) > dq_max_[i]) {
      dq = 0.0;
      too_fast = true;
    }
    // feed-forward within the torque and rate limits
    double ff = std::clamp(out.tau_ff[i], -tmax, tmax);
    if (ff != out.tau_ff[i]) clipped = true;
    const double ff_rated = std::clamp(ff, tau_ff_prev_[i] - max_step, tau_ff_prev_[i] + max_step);
    if (ff_rated != ff) rate_clipped = true;
    ff = ff_rated;
    // braking before the hard limit the joint is heading for
    const double v = s.dq[i];
    if (v != 0.0) {
      const double dir = v > 0.0 ? 1.0 : -1.0;
      const double room = dir > 0.0 ? L.q_max[i] - cfg_.joint_brake_margin - s.q[i]
                                    : s.q[i] - L.q_min[i] - cfg_.joint_brake_margin;
      const double tau_brake = tmax * cfg_.joint_brake_torque_fraction;
      const double decel = tau_brake / std::max(dyn_.M(i, i), 1e-9);
      const double travel = std::abs(v) * dt_ + v * v / (2.0 * decel);
      if (travel >= room) {
        q = kp > 0.0 ? s.q[i] - dir * tau_brake / kp : s.q[i];
        dq = 0.0;
        braked = true;
      }
    }
    // the PD torque at the measured state within the torque limit
    const double tau = kp * (q - s.q[i]) + kd * (dq - s.dq[i]) + ff;
    if (std::abs(tau) > tmax && kp > 0.0) {
      q = s.q[i] + (std::copysign(tmax, tau) - kd * (dq - s.dq[i]) - ff) / kp;
      clipped = true;
    }
    out.q[i] = q;
    out.dq[i] = dq;
    out.tau_ff[i] = ff;
  }
  if (limited) events_.add(Event::reference_limited);
  if (braked) events_.add(Event::joint_brake_active);
  if (joint_zone) events_.add(Event::joint_limit_active);
  if (too_fast) events_.add(Event::velocity_limit_active);
  if (clipped) events_.add(Event::torque_clipped);
  if (rate_clipped) events_.add(Event::torque_rate_clipped);
}

}  // namespace robo::rt
