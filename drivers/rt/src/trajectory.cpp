#include "robo_rt/trajectory.hpp"

#include <algorithm>

namespace robo::rt {

void timeScaling(Interpolation kind, double tau, double& s, double& ds_dtau) {
  tau = std::clamp(tau, 0.0, 1.0);
  if (kind == Interpolation::kMinJerk) {
    const double t2 = tau * tau, t3 = t2 * tau;
    s = t3 * (10.0 - 15.0 * tau + 6.0 * t2);
    ds_dtau = 30.0 * t2 * (1.0 - 2.0 * tau + t2);
  } else {
    s = tau;
    ds_dtau = 1.0;
  }
}

namespace {

std::array<double, 8> toPoint(const Reference& r) {
  std::array<double, 8> x{};
  if (r.space == TargetSpace::kJoint) {
    for (int i = 0; i < kDof; ++i) x[i] = r.q[i];
  } else {
    x[0] = r.p.x(); x[1] = r.p.y(); x[2] = r.p.z();
    x[3] = r.quat.w(); x[4] = r.quat.x(); x[5] = r.quat.y(); x[6] = r.quat.z();
  }
  x[7] = r.width;
  return x;
}

Quat quatOf(const std::array<double, 8>& x) { return Quat(x[3], x[4], x[5], x[6]); }

}  // namespace

void Trajectory::setPoint(int i, const std::array<double, 8>& x) { x_[i] = x; }

void Trajectory::hold(const Reference& ref) {
  space_ = ref.space;
  n_ = 0;
  t_[0] = 0.0;
  setPoint(0, toPoint(ref));
}

void Trajectory::start(const Reference& from, double t0, const Command& cmd, Interpolation kind,
                       double fallback_s) {
  space_ = cmd.space;
  kind_ = kind;
  n_ = 0;
  t_[0] = t0;
  Reference start = from;
  start.space = cmd.space;
  setPoint(0, toPoint(start));
  for (int k = 0; k < cmd.n; ++k) {
    if (cmd.wp[k].t <= t0) continue;  // already in the past: skip (latency)
    ++n_;
    t_[n_] = cmd.wp[k].t;
    setPoint(n_, cmd.wp[k].x);
  }
  if (n_ == 0 && cmd.n > 0) {  // every waypoint is late: go to the last one
    n_ = 1;
    t_[1] = t0 + fallback_s;
    setPoint(1, cmd.wp[cmd.n - 1].x);
  }
  // Keep consecutive quaternions in one hemisphere so slerp takes the short way.
  if (space_ == TargetSpace::kCartesian) {
    for (int i = 1; i <= n_; ++i) {
      if (quatOf(x_[i - 1]).dot(quatOf(x_[i])) < 0.0) {
        for (int j = 3; j < 7; ++j) x_[i][j] = -x_[i][j];
      }
    }
  }
}

void Trajectory::eval(double t, Reference& out) const {
  out.space = space_;
  int i = 0;  // segment index: from point i to point i + 1
  double s = 0.0, ds_dt = 0.0;
  if (n_ == 0 || t <= t_[0]) {
    i = 0;
  } else if (t >= t_[n_]) {
    i = n_;
  } else {
    while (i + 1 < n_ && t >= t_[i + 1]) ++i;
    const double T = t_[i + 1] - t_[i];
    double ds_dtau = 0.0;
    timeScaling(kind_, (t - t_[i]) / T, s, ds_dtau);
    ds_dt = ds_dtau / T;
  }
  const auto& a = x_[i];
  const auto& b = (i < n_) ? x_[i + 1] : x_[i];
  if (space_ == TargetSpace::kJoint) {
    for (int k = 0; k < kDof; ++k) {
      out.q[k] = a[k] + s * (b[k] - a[k]);
      out.dq[k] = ds_dt * (b[k] - a[k]);
    }
  } else {
    for (int k = 0; k < 3; ++k) {
      out.p[k] = a[k] + s * (b[k] - a[k]);
      out.v[k] = ds_dt * (b[k] - a[k]);
    }
    const Quat qa = quatOf(a), qb = quatOf(b);
    out.quat = qa.slerp(s, qb).normalized();
    const Eigen::AngleAxisd delta(qb * qa.conjugate());  // world-frame rotation from a to b
    out.w = ds_dt * delta.angle() * delta.axis();
  }
  out.width = a[7] + s * (b[7] - a[7]);
}

}  // namespace robo::rt
