#include "robo_rt/controller.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace robo::rt {

namespace {

bool finiteState(const RobotState& s) {
  return s.q.allFinite() && s.dq.allFinite() && std::isfinite(s.gripper_width) &&
         std::isfinite(s.gripper_speed);
}

bool allFinite(const std::array<double, kPointSize>& x) {
  return std::all_of(x.begin(), x.end(), [](double v) { return std::isfinite(v); });
}

// Per-joint config values (empty = NaN everywhere).
VecN perJoint(const std::vector<double>& v, int n) {
  VecN out = VecN::Constant(n, std::numeric_limits<double>::quiet_NaN());
  for (int i = 0; i < n && i < static_cast<int>(v.size()); ++i) out[i] = v[static_cast<size_t>(i)];
  return out;
}

}  // namespace

Controller::Controller(std::unique_ptr<RobotModel> model, const ControllerConfig& cfg, double dt)
    : cfg_(cfg),
      dt_(dt),
      model_(std::move(model)),
      n_(model_->nJoints()),
      n_tcp_(model_->nTcps()),
      layout_{n_, n_tcp_},
      dyn_(n_, n_tcp_),
      traj_(layout_),
      ref_(n_),
      osc_law_(cfg.osc_min_eig),
      ik_(n_, n_tcp_, cfg.ik_gain, cfg.ik_damping, cfg.ik_posture_gain),
      posture_(VecN::Zero(n_)),
      hold_q_(VecN::Zero(n_)),
      tau_prev_(VecN::Zero(n_)),
      q_cmd_(VecN::Zero(n_)),
      dq_cmd_(VecN::Zero(n_)),
      q_des_prev_(VecN::Zero(n_)),
      tau_ff_prev_(VecN::Zero(n_)),
      last_good_(n_) {
  const std::string err = cfg_.validate();
  if (!err.empty()) throw std::invalid_argument(err);
  if (cfg_.n_joints != n_) {
    throw std::invalid_argument("n_joints=" + std::to_string(cfg_.n_joints) + " must match the robot's " +
                                std::to_string(n_) + " controlled joints");
  }
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

bool Controller::validPoint(TargetSpace space, std::array<double, kPointSize>& x) {
  const double w = x[static_cast<size_t>(layout_.width(space))];
  if (w < 0.0 || w > cfg_.gripper_max_width) return false;
  std::array<Vec3, kMaxTcps> p;
  if (space == TargetSpace::kJoint) {
    const Limits& L = cmd_model_->limits();
    VecN q(n_);
    for (int i = 0; i < n_; ++i) {
      if (x[i] < L.q_min[i] || x[i] > L.q_max[i]) return false;  // outside the hard limits: reject
      const double lo = L.q_min[i] + cfg_.joint_limit_margin, hi = L.q_max[i] - cfg_.joint_limit_margin;
      x[i] = std::clamp(x[i], std::min(lo, hi), std::max(lo, hi));  // inside the margin: clamp out of it
      q[i] = x[i];
    }
    std::array<Mat3, kMaxTcps> R;
    cmd_model_->tcpPoses(q, p, R);
  } else {
    for (int k = 0; k < n_tcp_; ++k) {
      double* xk = x.data() + 7 * k;
      p[static_cast<size_t>(k)] = Vec3(xk[0], xk[1], xk[2]);
      const double n = std::sqrt(xk[3] * xk[3] + xk[4] * xk[4] + xk[5] * xk[5] + xk[6] * xk[6]);
      if (std::abs(n - 1.0) > cfg_.quat_norm_tolerance) return false;
      for (int j = 3; j < 7; ++j) xk[j] /= n;
    }
  }
  for (int k = 0; k < n_tcp_; ++k) {
    const Vec3& pk = p[static_cast<size_t>(k)];
    if (!((pk.array() >= box_min_.array()).all() && (pk.array() <= box_max_.array()).all())) return false;
  }
  return true;
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

bool Controller::setJointTarget(const VecN& q, double width, double now) {
  if (q.size() != n_) {
    events_.add(Event::rejected_out_of_range);
    return false;
  }
  Waypoint w;
  for (int i = 0; i < n_; ++i) w.x[i] = q[i];
  w.x[static_cast<size_t>(n_)] = width;
  w.t = now;
  return submit(TargetSpace::kJoint, &w, 1, now, true);
}

bool Controller::setEeTargets(const std::vector<Vec3>& pos, const std::vector<Eigen::Vector4d>& quat_wxyz,
                              double width, double now) {
  if (static_cast<int>(pos.size()) != n_tcp_ || static_cast<int>(quat_wxyz.size()) != n_tcp_) {
    events_.add(Event::rejected_out_of_range);
    return false;
  }
  Waypoint w;
  for (int k = 0; k < n_tcp_; ++k) {
    for (int i = 0; i < 3; ++i) w.x[7 * k + i] = pos[static_cast<size_t>(k)][i];
    for (int i = 0; i < 4; ++i) w.x[7 * k + 3 + i] = quat_wxyz[static_cast<size_t>(k)][i];
  }
  w.x[static_cast<size_t>(7 * n_tcp_)] = width;
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
  Reference r(n_);
  r.space = space;
  // PD drives track a configuration of their own: continue from it rather than from the measured
  // one, which sags under load by the drives' tracking error.
  r.q = cfg_.output_mode == OutputMode::kJointPd && initialised_ ? q_des_prev_ : s.q;
  for (int k = 0; k < n_tcp_; ++k) {
    r.p[k] = dyn_.world_p_tcp[k];
    r.quat[k] = Quat(dyn_.world_R_tcp[k]).normalized();
  }
  r.width = ref_.width;
  return r;
}

void Controller::resetNow(const RobotState& s, double t) {
  const VecN posture = perJoint(cfg_.posture, n_);
  for (int i = 0; i < n_; ++i) posture_[i] = std::isfinite(posture[i]) ? posture[i] : s.q[i];
  initialised_ = false;  // measuredReference: from the measured pose
  ref_ = measuredReference(TargetSpace::kCartesian, s);
  ref_.width = std::clamp(s.gripper_width, 0.0, cfg_.gripper_max_width);
  traj_.hold(ref_);
  hold_q_ = s.q;
  q_cmd_ = s.q;
  dq_cmd_.setZero();
  q_des_prev_ = s.q;
  tau_prev_ = dyn_.nle;  // start the rate limiters from gravity compensation, not from zero
  tau_ff_prev_ = dyn_.nle;
  armed_ = false;
  last_fresh_ = t;
  held_.store(false, std::memory_order_release);
  cmd_slot_.fetch();  // drop a command that was queued before the reset
  initialised_ = true;
  events_.add(Event::resets);
}

void Controller::rearmNow(const RobotState& s, double t) {
  q_cmd_ = s.q;
  q_des_prev_ = s.q;
  ref_ = measuredReference(traj_.space(), s);  // hold where the arm is, keep the gripper target
  traj_.hold(ref_);
  armed_ = false;
  last_fresh_ = t;
  cmd_slot_.fetch();
  held_.store(false, std::memory_order_release);
  events_.add(Event::rearms);
}

void Controller::enterHold(const RobotState& s, Event why) {
  hold_q_ = s.q;
  held_.store(true, std::memory_order_release);
  events_.add(why);
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
  Reference from(n_);
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

void Controller::step(const RobotState& s_in, bool fresh, double t, JointCommand& out, Snapshot& snap) {
  ++ticks_;
  if (finiteState(s_in)) {
    last_good_ = s_in;
    have_good_ = true;
  } else {
    events_.add(Event::nonfinite_state);
    fresh = false;
    if (!have_good_) {  // nothing sane to work with yet: repeat the last command
      out.tau = tau_prev_;
      return;
    }
  }
  const RobotState& s = last_good_;
  model_->compute(s.q, s.dq, dyn_);
  serviceRequests(s, t);
  if (fresh) last_fresh_ = t;
  if (gains_slot_.fetch()) gains_ = gains_slot_.front();
  if (cmd_slot_.fetch() && !held()) startCommand(cmd_slot_.front(), s, t);

  // Watchdog: a stale target switches to a damped hold of the current pose until rearm().
  if (armed_ && !held() && t - stale_from_ > cfg_.watchdogTimeout()) enterHold(s, Event::watchdog_trips);
  // No fresh state from the robot for too long: hold the last measured pose, the same way.
  if (!held() && t - last_fresh_ > cfg_.state_timeout_s) enterHold(s, Event::state_timeouts);

  if (cfg_.output_mode == OutputMode::kJointPd) {
    drivePdStep(s, t, out);
  } else {
    torqueStep(s, t, out);
  }
  out.gravity = dyn_.g;
  out.gripper_width_target = ref_.width;
  out.gripper_force = gripperForce(ref_.width, s.gripper_width, s.gripper_speed, gains_.gripper_kp,
                                   gains_.gripper_kd, cfg_.gripper_max_force);
  fillSnapshot(s, t, snap);
  snap.tau = out.tau;
  snap.gripper_force = out.gripper_force;
}

void Controller::torqueStep(const RobotState& s, double t, JointCommand& out) {
  VecN tau = VecN::Zero(n_);
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
    const VecN kd = jointKd(gains_, n_);
    tau = dyn_.g.allFinite() ? VecN(dyn_.g - kd.cwiseProduct(s.dq)) : tau_prev_;
  }
  if (info.reference_limited) events_.add(Event::reference_limited);
  applyLimits(s, tau);
  tau_prev_ = tau;
  out.drive_pd = false;
  out.tau = tau;
}

void Controller::drivePdStep(const RobotState& s, double t, JointCommand& out) {
  LawInfo info;
  out.drive_pd = true;
  out.kp = jointKp(gains_, n_);
  out.kd = jointKd(gains_, n_);
  if (held()) {
    out.q = hold_q_;
    out.dq.setZero(n_);
    out.kd *= cfg_.hold_damping_scale;
  } else {
    traj_.eval(t, ref_);
    if (ref_.space == TargetSpace::kJoint) {
      const double lim = gains_.max_joint_error;  // reference limiting, as the joint impedance law
      const VecN e = ref_.q - s.q;
      const VecN e_clipped = e.cwiseMax(-lim).cwiseMin(lim);
      if (e_clipped != e) info.reference_limited = true;
      out.q = s.q + e_clipped;
      out.dq = ref_.dq.cwiseMax(-dq_max_).cwiseMin(dq_max_);
    } else if (ik_.step(*model_, ref_, gains_, posture_, dq_max_, model_->limits(), cfg_.joint_limit_margin, dt_,
                        q_cmd_, dq_cmd_, info)) {
      out.q = q_cmd_;
      out.dq = dq_cmd_;
    } else {  // non-finite IK: keep the last target, no speed
      events_.add(Event::nonfinite_torque);
      out.q = q_des_prev_;
      out.dq.setZero(n_);
    }
  }
  out.tau_ff = dyn_.nle.allFinite() ? dyn_.nle : tau_ff_prev_;
  if (info.reference_limited) events_.add(Event::reference_limited);
  applyDriveLimits(s, out);
  if (ref_.space == TargetSpace::kJoint || held()) q_cmd_ = out.q;  // Cartesian targets continue from here
  ref_.q = out.q;
  ref_.dq = out.dq;
  q_des_prev_ = out.q;
  tau_ff_prev_ = out.tau_ff;
  out.tau = out.kp.cwiseProduct(out.q - s.q) + out.kd.cwiseProduct(out.dq - s.dq) + out.tau_ff;
  tau_prev_ = out.tau;
}

void Controller::service(const RobotState& s_in, double t, Snapshot& snap) {
  if (!finiteState(s_in)) return;
  last_good_ = s_in;
  have_good_ = true;
  model_->compute(s_in.q, s_in.dq, dyn_);
  serviceRequests(s_in, t);
  last_fresh_ = t;
  fillSnapshot(s_in, t, snap);
}

void Controller::fillSnapshot(const RobotState& s, double t, Snapshot& snap) const {
  snap.tick = ticks_;
  snap.t = t;
  snap.mode = !initialised_ ? Mode::kIdle
              : held()      ? Mode::kHold
              : (ref_.space == TargetSpace::kJoint ? Mode::kJoint : Mode::kCartesian);
  snap.state = s;
  snap.n_tcp = n_tcp_;
  for (int k = 0; k < n_tcp_; ++k) {
    snap.ee_pos[k] = dyn_.world_p_tcp[k];
    snap.ee_quat[k] = Quat(dyn_.world_R_tcp[k]).normalized();
  }
  snap.ref = ref_;
}

}  // namespace robo::rt
