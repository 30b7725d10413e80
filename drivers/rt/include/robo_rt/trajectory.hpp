// Reference generator: from the reference at the moment a command arrives, through its
// timestamped waypoints, with linear or minimum-jerk time scaling. Real-time safe (fixed arrays).
#pragma once

#include "robo_rt/config.hpp"
#include "robo_rt/types.hpp"

namespace robo::rt {

/// The reference at one instant.
struct Reference {
  TargetSpace space = TargetSpace::kCartesian;
  VecN q;                         ///< joint reference (rad), n
  VecN dq;                        ///< joint reference speed (rad/s), n
  std::array<Vec3, kMaxTcps> p{};     ///< TCP position references, world (m)
  std::array<Vec3, kMaxTcps> v{};     ///< TCP linear velocity references, world (m/s)
  std::array<Quat, kMaxTcps> quat{};  ///< TCP orientation references, world
  std::array<Vec3, kMaxTcps> w{};     ///< TCP angular velocity references, world (rad/s)
  double width = 0.0;             ///< gripper width reference (m)

  Reference() = default;
  explicit Reference(int n) : q(VecN::Zero(n)), dq(VecN::Zero(n)) {
    p.fill(Vec3::Zero());
    v.fill(Vec3::Zero());
    w.fill(Vec3::Zero());
    quat.fill(Quat::Identity());
  }
};

/// Time scaling s(tau) on [0, 1] and its derivative ds/dtau.
void timeScaling(Interpolation kind, double tau, double& s, double& ds_dtau);

/// Piecewise trajectory through up to kMaxWaypoints waypoints.
class Trajectory {
 public:
  explicit Trajectory(const PointLayout& layout = {}) : layout_(layout) {}
  /// Hold `ref` (zero speed) from now on.
  void hold(const Reference& ref);
  /// Start at `from` at time `t0`, then pass through the command's waypoints. Waypoints at or before
  /// t0 are dropped (late chunk); if none is left, the last one is reached at t0 + `fallback_s`.
  void start(const Reference& from, double t0, const Command& cmd, Interpolation kind, double fallback_s);
  /// The reference at time t (clamped to the first/last waypoint).
  void eval(double t, Reference& out) const;
  /// Time of the last waypoint (s).
  double endTime() const { return t_[n_]; }
  TargetSpace space() const { return space_; }

 private:
  using Point = std::array<double, kPointSize>;
  Point toPoint(const Reference& r) const;
  PointLayout layout_;
  TargetSpace space_ = TargetSpace::kCartesian;
  Interpolation kind_ = Interpolation::kLinear;
  int n_ = 0;  // segments; points 0..n_
  std::array<double, kMaxWaypoints + 1> t_{};
  std::array<Point, kMaxWaypoints + 1> x_{};
};

}  // namespace robo::rt
