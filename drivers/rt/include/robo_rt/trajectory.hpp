// Reference generator: from the reference at the moment a command arrives, through its
// timestamped waypoints, with linear or minimum-jerk time scaling. Real-time safe (fixed arrays).
#pragma once

#include "robo_rt/config.hpp"
#include "robo_rt/types.hpp"

namespace robo::rt {

/// The reference at one instant.
struct Reference {
  TargetSpace space = TargetSpace::kCartesian;
  Vec7 q = Vec7::Zero();     ///< joint reference (rad)
  Vec7 dq = Vec7::Zero();    ///< joint reference speed (rad/s)
  Vec3 p = Vec3::Zero();     ///< TCP position reference, world (m)
  Vec3 v = Vec3::Zero();     ///< TCP linear velocity reference, world (m/s)
  Quat quat = Quat::Identity();  ///< TCP orientation reference, world
  Vec3 w = Vec3::Zero();     ///< TCP angular velocity reference, world (rad/s)
  double width = 0.0;        ///< gripper width reference (m)
};

/// Time scaling s(tau) on [0, 1] and its derivative ds/dtau.
void timeScaling(Interpolation kind, double tau, double& s, double& ds_dtau);

/// Piecewise trajectory through up to kMaxWaypoints waypoints.
class Trajectory {
 public:
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
  void setPoint(int i, const std::array<double, 8>& x);
  TargetSpace space_ = TargetSpace::kCartesian;
  Interpolation kind_ = Interpolation::kLinear;
  int n_ = 0;  // segments; points 0..n_
  std::array<double, kMaxWaypoints + 1> t_{};
  std::array<std::array<double, 8>, kMaxWaypoints + 1> x_{};
};

}  // namespace robo::rt
