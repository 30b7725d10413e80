#include "robo_rt/controller.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace robo::rt {

namespace {

bool finiteState(const RobotState& s) {
  return s.q.allFinite() && s.dq.allFinite() && std::isfinite(s.gripper_width) &&
         std::isfinite(s.gripper_speed);
}

bool allFinite(const std::array<double, 8>& x) {
  return std::all_of(x.begin(), x.end(), [](double v) { return std::isfinite(v); });
}

// Joint-space braking of the whole arm (issue 22): tau = nle - M dq / T decelerates every joint
// along its current direction at once (qdd = -dq / T, so no joint's braking fights another's through
// the inertia coupling). T is the shortest time, at least t_min, that keeps each torque within
// +-tau_plan (a joint whose gravity alone exceeds it does not bound T) and whose braking torques,
// decaying with the speeds (d tau / dt = M dq / T^2 at the start), stay within the torque-rate limit.
double jointSpaceBrake(const Mat7& M, const Vec7& nle, const Vec7& dq, const Vec7& tau_plan, double rate_limit,
                       double t_min, Vec7& tau_brake) {
  const Vec7 momentum = M * dq;
  double T = std::max(t_min, std::sqrt(momentum.cwiseAbs().maxCoeff() / rate_limit));
  for (int j = 0; j < kDof; ++j) {
    const double room = momentum[j] > 0.0 ? tau_plan[j] + nle[j] : tau_plan[j] - nle[j];
    if (room > 0.0) T = std::max(T, std::abs(momentum[j]) / room);
  }
  tau_brake = nle - momentum / T;
  return T;
}

}  // namespace

Controller::Controller(std::unique_ptr<RobotModel> model, const ControllerConfig& cfg, double dt)
    : cfg_(cfg), dt_(dt), model_(std::move(model)), osc_law_(cfg.osc_min_eig) {
  const std::string err = cfg_.validate();
  if (!err.empty()) throw std::invalid_argument(err);
  if (!(dt_ > 0.0) || !std::isfinite(dt_)) throw std::invalid_argument("robo.rt: loop period must be > 0");
  cmd_model_ = model_->clone();
  box_min_ = Eigen::Map<const Vec3>(cfg_.workspace_min.data());
  box_max_ = Eigen::Map<const Vec3>(cfg_.workspace_max.data());
  gains_ = cfg_.gains();
  cmd_gains_ = gains_;
  dq_max_ = model_->limits().dq_max * cfg_.velocity_limit_scale;
}

// ============================================================================================
// command side
// ============================================================================================

bool Controller::validPoint(TargetSpace space, std::array<double, 8>& x) {
  const double w = x[7];
  if (w < 0.0 || w > cfg_.gripper_max_width) return false;
  Vec3 p;
  if (space == TargetSpace::kJoint) {
    const Limits& L = cmd_model_->limits();
    Vec7 q;
    for (int i = 0; i < kDof; ++i) {
      if (x[i] < L.q_min[i] || x[i] > L.q_max[i]) return false;  // outside the hard limits: reject
      const double lo = L.q_min[i] + cfg_.joint_limit_margin, hi = L.q_max[i] - cfg_.joint_limit_margin;
      x[i] = std::clamp(x[i], std::min(lo, hi), std::max(lo, hi));  // inside the margin: clamp out of it
      q[i] = x[i];
    }
    Mat3 R;
    cmd_model_->tcpPose(q, p, R);
  } else {
    p = Vec3(x[0], x[1], x[2]);
    const double n = std::sqrt(x[3] * x[3] + x[4] * x[4] + x[5] * x[5] + x[6] * x[6]);
    if (std::abs(n - 1.0) > cfg_.quat_norm_tolerance) return false;
    for (int j = 3; j < 7; ++j) x[j] /= n;
  }
  return (p.array() >= box_min_.array()).all() && (p.array() <= box_max_.array()).all();
}

bool Controller::submit(TargetSpace space, const Waypoint* wps, int n, double now, bool single) {
  std::lock_guard<std::mutex> lock(cmd_mutex_);
  if (n < 1 || n > kMaxWaypoints) {
    events_.add(Event::rejected_out_of_range);
    return false;
  }
  for (int k = 0; k < n; ++k) {
    if (!std::isfinite(wps[k].t) || !allFinite(wps[k].x)) {
      events_.add(Event::rejected_nonfinite);
      return false;
    }
  }
  if (held()) {
    events_.add(Event::rejected_while_held);
    return false;
  }
  Command& c = cmd_slot_.back();
  for (int k = 0; k < n; ++k) {
    c.wp[k] = wps[k];
    const bool time_ok = single || ((k == 0 || wps[k].t > wps[k - 1].t) && wps[k].t <= now + kMaxChunkHorizon);
    if (!time_ok || !validPoint(space, c.wp[k].x)) {
      events_.add(Event::rejected_out_of_range);
      return false;
    }
  }
  c.seq = ++cmd_seq_;
  c.space = space;
  c.n = n;
  c.t_arrival = now;
  c.single = single;
  if (single) c.wp[0].t = now + cfg_.interpDuration();
  cmd_slot_.publish();
  events_.add(Event::commands_accepted);
  return true;
}

bool Controller::setJointTarget(const Vec7& q, double width, double now) {
  Waypoint w;
  for (int i = 0; i < kDof; ++i) w.x[i] = q[i];
  w.x[7] = width;
  w.t = now;
  return submit(TargetSpace::kJoint, &w, 1, now, true);
}

bool Controller::setEeTarget(const Vec3& pos, const Eigen::Vector4d& quat_wxyz, double width, double now) {
  Waypoint w;
  for (int i = 0; i < 3; ++i) w.x[i] = pos[i];
  for (int i = 0; i < 4; ++i) w.x[3 + i] = quat_wxyz[i];
  w.x[7] = width;
  w.t = now;
  return submit(TargetSpace::kCartesian, &w, 1, now, true);
}

bool Controller::setChunk(TargetSpace space, const std::vector<Waypoint>& wps, double now) {
  return submit(space, wps.data(), static_cast<int>(wps.size()), now, false);
}

bool Controller::setGains(const Gains& g) {
  if (!validateGains(g).empty()) {
    events_.add(Event::gains_rejected);
    return false;
  }
  std::lock_guard<std::mutex> lock(cmd_mutex_);
  cmd_gains_ = g;
  gains_slot_.back() = g;
  gains_slot_.publish();
  events_.add(Event::gains_changed);
  return true;
}

Gains Controller::gains() const {
  std::lock_guard<std::mutex> lock(cmd_mutex_);
  return cmd_gains_;
}

std::uint64_t Controller::requestReset() {
  const std::uint64_t ticket = requests_.fetch_add(1) + 1;
  reset_ticket_.store(ticket, std::memory_order_release);
  return ticket;
}

std::uint64_t Controller::requestRearm() {
  const std::uint64_t ticket = requests_.fetch_add(1) + 1;
  rearm_ticket_.store(ticket, std::memory_order_release);
  return ticket;
}

// ============================================================================================
// loop side
// ============================================================================================

Reference Controller::measuredReference(TargetSpace space, const RobotState& s) const {
  Reference r;
  r.space = space;
  r.q = s.q;
  r.p = dyn_.world_p_tcp;
  r.quat = Quat(dyn_.world_R_tcp).normalized();
  r.width = ref_.width;
  return r;
}

void Controller::resetNow(const RobotState& s, double t) {
  for (int i = 0; i < kDof; ++i) posture_[i] = std::isfinite(cfg_.posture[i]) ? cfg_.posture[i] : s.q[i];
  ref_ = measuredReference(TargetSpace::kCartesian, s);
  ref_.width = std::clamp(s.gripper_width, 0.0, cfg_.gripper_max_width);
  traj_.hold(ref_);
  hold_q_ = s.q;
  tau_prev_ = dyn_.nle;  // start the rate limiter from gravity compensation, not from zero
  armed_ = false;
  held_.store(false, std::memory_order_release);
  cmd_slot_.fetch();  // drop a command that was queued before the reset
  initialised_ = true;
  events_.add(Event::resets);
}

void Controller::rearmNow(const RobotState& s, double t) {
  ref_ = measuredReference(traj_.space(), s);  // hold where the arm is, keep the gripper target
  traj_.hold(ref_);
  armed_ = false;
  cmd_slot_.fetch();
  held_.store(false, std::memory_order_release);
  events_.add(Event::rearms);
}

void Controller::serviceRequests(const RobotState& s, double t) {
  const std::uint64_t reset = reset_ticket_.load(std::memory_order_acquire);
  const std::uint64_t rearm = rearm_ticket_.load(std::memory_order_acquire);
  if (!initialised_ || reset > reset_done_) {
    resetNow(s, t);
    reset_done_ = reset;
  }
  if (rearm > rearm_done_) {
    if (rearm > reset) rearmNow(s, t);  // a reset after the rearm already did its job
    rearm_done_ = rearm;
  }
  const std::uint64_t done = std::max(reset_done_, rearm_done_);
  if (done > served_.load(std::memory_order_relaxed)) served_.store(done, std::memory_order_release);
}

void Controller::startCommand(const Command& c, const RobotState& s, double t) {
  Reference from;
  if (c.space == traj_.space()) {
    traj_.eval(t, from);  // continue from the current reference (smooth preemption)
  } else {
    from = measuredReference(c.space, s);  // switching space: start from the measured pose
  }
  from.width = ref_.width;
  traj_.start(from, t, c, cfg_.interpolation, cfg_.interpDuration());
  stale_from_ = c.single ? c.t_arrival : std::max(c.t_arrival, c.wp[c.n - 1].t);
  armed_ = true;
}

void Controller::step(const RobotState& s_in, double t, JointCommand& out, Snapshot& snap) {
  ++ticks_;
  if (finiteState(s_in)) {
    last_good_ = s_in;
    have_good_ = true;
  } else {
    events_.add(Event::nonfinite_state);
    if (!have_good_) {  // nothing sane to work with yet: repeat the last command
      out.tau = tau_prev_;
      return;
    }
  }
  const RobotState& s = last_good_;
  model_->compute(s.q, s.dq, dyn_);
  serviceRequests(s, t);
  if (gains_slot_.fetch()) gains_ = gains_slot_.front();
  if (cmd_slot_.fetch() && !held()) startCommand(cmd_slot_.front(), s, t);

  // Watchdog: a stale target switches to a damped hold of the current pose until rearm().
  if (armed_ && !held() && t - stale_from_ > cfg_.watchdogTimeout()) {
    hold_q_ = s.q;
    held_.store(true, std::memory_order_release);
    events_.add(Event::watchdog_trips);
  }

  Vec7 tau = Vec7::Zero();
  LawInfo info;
  bool ok;
  if (held()) {
    ok = hold_law_.compute({s, dyn_, ref_, gains_, hold_q_, cfg_.hold_damping_scale, dq_max_}, tau, info);
  } else {
    traj_.eval(t, ref_);
    ControlLaw& law = (ref_.space == TargetSpace::kJoint) ? static_cast<ControlLaw&>(joint_law_)
                                                          : static_cast<ControlLaw&>(osc_law_);
    ok = law.compute({s, dyn_, ref_, gains_, posture_, cfg_.hold_damping_scale, dq_max_}, tau, info);
  }
  if (!ok) {  // damped gravity compensation; if even the model is broken, repeat the last torque
    events_.add(Event::nonfinite_torque);
    const Vec7 kd = Eigen::Map<const Vec7>(gains_.joint_kd.data());
    tau = dyn_.g.allFinite() ? Vec7(dyn_.g - kd.cwiseProduct(s.dq)) : tau_prev_;
  }
  if (info.reference_limited) events_.add(Event::reference_limited);
  applyLimits(s, tau);
  tau_prev_ = tau;

  out.tau = tau;
  out.gravity = dyn_.g;
  out.gripper_width_target = ref_.width;
  out.gripper_force = gripperForce(ref_.width, s.gripper_width, s.gripper_speed, gains_.gripper_kp,
                                   gains_.gripper_kd, cfg_.gripper_max_force);
  fillSnapshot(s, t, snap);
  snap.tau = tau;
  snap.gripper_force = out.gripper_force;
}

void Controller::service(const RobotState& s_in, double t, Snapshot& snap) {
  if (!finiteState(s_in)) return;
  last_good_ = s_in;
  have_good_ = true;
  model_->compute(s_in.q, s_in.dq, dyn_);
  serviceRequests(s_in, t);
  fillSnapshot(s_in, t, snap);
}

void Controller::applyLimits(const RobotState& s, Vec7& tau) {
  const Limits& L = model_->limits();
  bool joint_zone = false, too_fast = false, clipped = false, rate_clipped = false;
  for (int i = 0; i < kDof; ++i) {
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
  // Workspace box: a wall spring-damper on the measured TCP.
  const Vec3& p = dyn_.world_p_tcp;
  const Vec3 inside = p.cwiseMax(box_min_).cwiseMin(box_max_);
  if (inside != p) {
    const Vec3 v = dyn_.J.topRows<3>() * s.dq;
    Vec3 F = cfg_.workspace_kp * (inside - p);
    for (int k = 0; k < 3; ++k) {
      const double out_dir = p[k] - inside[k];
      if (out_dir * v[k] > 0.0) F[k] -= cfg_.workspace_kd * v[k];
    }
    tau += dyn_.J.topRows<3>().transpose() * F;
    events_.add(Event::workspace_active);
  }
  // Torque and torque rate.
  const double max_step = cfg_.torque_rate_limit * dt_;
  for (int i = 0; i < kDof; ++i) {
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
bool Controller::brakeBeforeLimits(const RobotState& s, Vec7& tau) const {
  const Limits& L = model_->limits();
  const Vec7 tau_max = L.tau_max * cfg_.torque_limit_scale;
  const Vec7 tau_plan = tau_max * cfg_.joint_brake_torque_fraction;
  const double t_min = 5.0 * dt_;  // the discrete brake qdd = -dq / T is well damped for T >= a few ticks
  const Mat7& M_inv = dyn_.M_inv;
  const Vec7 qdd = M_inv * (tau - dyn_.nle);
  if (!qdd.allFinite()) return false;  // broken model: the torque clip still holds
  const Vec7 dq1 = s.dq + qdd * dt_;
  const Vec7 q1 = s.q + s.dq * dt_ + 0.5 * dt_ * dt_ * qdd;
  Vec7 tau_brake;
  const double t_stop = jointSpaceBrake(dyn_.M, dyn_.nle, dq1, tau_plan, cfg_.torque_rate_limit, t_min, tau_brake);
  const Vec7 change = tau_brake - tau;
  const double t_ramp = change.cwiseAbs().maxCoeff() / cfg_.torque_rate_limit;
  bool can_stop = true;
  for (int i = 0; i < kDof && can_stop; ++i) {
    can_stop = std::abs(dq1[i]) <= dq_max_[i];
    for (const double dir : {1.0, -1.0}) {  // toward the upper, then the lower limit
      if (!can_stop) break;
      // largest acceleration toward the limit while the torques ramp from `tau` to `tau_brake`
      double a = dir * qdd[i];
      for (int j = 0; j < kDof; ++j) a += std::max(0.0, dir * M_inv(i, j) * change[j]);
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
  for (int j = 0; j < kDof; ++j) {
    tau[j] = std::clamp(std::clamp(tau_brake[j], tau_prev_[j] - max_step, tau_prev_[j] + max_step), -tau_max[j],
                        tau_max[j]);
  }
  return true;
}

void Controller::fillSnapshot(const RobotState& s, double t, Snapshot& snap) const {
  snap.tick = ticks_;
  snap.t = t;
  snap.mode = !initialised_ ? Mode::kIdle
              : held()      ? Mode::kHold
              : (ref_.space == TargetSpace::kJoint ? Mode::kJoint : Mode::kCartesian);
  snap.state = s;
  snap.ee_pos = dyn_.world_p_tcp;
  snap.ee_quat = Quat(dyn_.world_R_tcp).normalized();
  snap.ref = ref_;
}

}  // namespace robo::rt
