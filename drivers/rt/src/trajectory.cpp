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

Quat quatAt(const std::array<double, kPointSize>& x, int k) {
  return Quat(x[7 * k + 3], x[7 * k + 4], x[7 * k + 5], x[7 * k + 6]);
}

}  // namespace

Trajectory::Point Trajectory::toPoint(const Reference& r) const {
  Point x{};
  if (r.space == TargetSpace::kJoint) {
    for (int i = 0; i < layout_.n; ++i) x[i] = r.q[i];
  } else {
    for (int k = 0; k < layout_.n_tcp; ++k) {
      for (int i = 0; i < 3; ++i) x[7 * k + i] = r.p[k][i];
      x[7 * k + 3] = r.quat[k].w();
      x[7 * k + 4] = r.quat[k].x();
      x[7 * k + 5] = r.quat[k].y();
      x[7 * k + 6] = r.quat[k].z();
    }
  }
  x[layout_.width(r.space)] = r.width;
  return x;
}

void Trajectory::hold(const Reference& ref) {
  space_ = ref.space;
  n_ = 0;
  t_[0] = 0.0;
  x_[0] = toPoint(ref);
}

void Trajectory::start(const Reference& from, double t0, const Command& cmd, Interpolation kind,
                       double fallback_s) {
  space_ = cmd.space;
  kind_ = kind;
  n_ = 0;
  t_[0] = t0;
  Reference start = from;
  start.space = cmd.space;
  x_[0] = toPoint(start);
  for (int k = 0; k < cmd.n; ++k) {
    if (cmd.wp[k].t <= t0) continue;  // already in the past: skip (latency)
    ++n_;
    t_[n_] = cmd.wp[k].t;
    x_[n_] = cmd.wp[k].x;
  }
  if (n_ == 0 && cmd.n > 0) {  // every waypoint is late: go to the last one
    n_ = 1;
    t_[1] = t0 + fallback_s;
    x_[1] = cmd.wp[cmd.n - 1].x;
  }
  // Keep consecutive quaternions in one hemisphere so slerp takes the short way.
  if (space_ == TargetSpace::kCartesian) {
    for (int i = 1; i <= n_; ++i) {
      for (int k = 0; k < layout_.n_tcp; ++k) {
        if (quatAt(x_[i - 1], k).dot(quatAt(x_[i], k)) < 0.0) {
          for (int j = 3; j < 7; ++j) x_[i][7 * k + j] = -x_[i][7 * k + j];
        }
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
    for (int k = 0; k < layout_.n; ++k) {
      out.q[k] = a[k] + s * (b[k] - a[k]);
      out.dq[k] = ds_dt * (b[k] - a[k]);
    }
  } else {
    for (int c = 0; c < layout_.n_tcp; ++c) {
      for (int k = 0; k < 3; ++k) {
        out.p[c][k] = a[7 * c + k] + s * (b[7 * c + k] - a[7 * c + k]);
        out.v[c][k] = ds_dt * (b[7 * c + k] - a[7 * c + k]);
      }
      const Quat qa = quatAt(a, c), qb = quatAt(b, c);
      out.quat[c] = qa.slerp(s, qb).normalized();
      const Eigen::AngleAxisd delta(qb * qa.conjugate());  // world-frame rotation from a to b
      out.w[c] = ds_dt * delta.angle() * delta.axis();
    }
  }
  const int wi = layout_.width(space_);
  out.width = a[wi] + s * (b[wi] - a[wi]);
}

}  // namespace robo::rt
