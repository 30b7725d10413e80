#include "robo_rt/config.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace robo::rt {

Gains ControllerConfig::gains() const {
  Gains g;
  std::copy_n(joint_kp.begin(), std::min<size_t>(joint_kp.size(), kMaxDof), g.joint_kp.begin());
  std::copy_n(joint_kd.begin(), std::min<size_t>(joint_kd.size(), kMaxDof), g.joint_kd.begin());
  g.cart_kp_pos = cart_kp_pos;
  g.cart_kp_rot = cart_kp_rot;
  g.cart_damping_ratio = cart_damping_ratio;
  g.nullspace_kp = nullspace_kp;
  g.nullspace_kd = nullspace_kd;
  g.max_pos_error = max_pos_error;
  g.max_rot_error = max_rot_error;
  g.max_joint_error = max_joint_error;
  g.max_ee_speed = max_ee_speed;
  g.max_ee_ang_speed = max_ee_ang_speed;
  g.gripper_kp = gripper_kp;
  g.gripper_kd = gripper_kd;
  return g;
}

namespace {

// One-line messages: field, value, allowed range.
template <class T>
std::string bad(const char* field, T value, const char* range) {
  std::ostringstream os;
  os << field << "=" << value << " must be " << range;
  return os.str();
}

bool nonneg(double v) { return std::isfinite(v) && v >= 0.0; }
bool pos(double v) { return std::isfinite(v) && v > 0.0; }
bool upTo(double v, double hi) { return nonneg(v) && v <= hi; }       // [0, hi]
bool posUpTo(double v, double hi) { return pos(v) && v <= hi; }       // (0, hi]

// "finite and in [0, hi] (unit)" for gain messages
std::string range(const char* lo, double hi, const char* unit) {
  std::ostringstream os;
  os << "finite and in " << lo << ", " << hi << "]" << (unit[0] ? " (" : "") << unit << (unit[0] ? ")" : "");
  return os.str();
}

}  // namespace

std::string validateGains(const Gains& g) {
  for (int i = 0; i < kMaxDof; ++i) {
    if (!upTo(g.joint_kp[i], kMaxJointKp)) return bad("joint_kp", g.joint_kp[i], range("[0", kMaxJointKp, "N m/rad").c_str());
    if (!upTo(g.joint_kd[i], kMaxJointKd)) return bad("joint_kd", g.joint_kd[i], range("[0", kMaxJointKd, "N m s/rad").c_str());
  }
  if (!upTo(g.cart_kp_pos, kMaxCartKp)) return bad("cart_kp_pos", g.cart_kp_pos, range("[0", kMaxCartKp, "1/s^2").c_str());
  if (!upTo(g.cart_kp_rot, kMaxCartKp)) return bad("cart_kp_rot", g.cart_kp_rot, range("[0", kMaxCartKp, "1/s^2").c_str());
  if (!upTo(g.cart_damping_ratio, kMaxCartDampingRatio)) {
    return bad("cart_damping_ratio", g.cart_damping_ratio, range("[0", kMaxCartDampingRatio, "").c_str());
  }
  if (!upTo(g.nullspace_kp, kMaxNullspaceKp)) return bad("nullspace_kp", g.nullspace_kp, range("[0", kMaxNullspaceKp, "N m/rad").c_str());
  if (!upTo(g.nullspace_kd, kMaxNullspaceKd)) return bad("nullspace_kd", g.nullspace_kd, range("[0", kMaxNullspaceKd, "N m s/rad").c_str());
  if (!posUpTo(g.max_pos_error, kMaxPosError)) return bad("max_pos_error", g.max_pos_error, range("(0", kMaxPosError, "m").c_str());
  if (!posUpTo(g.max_rot_error, kMaxRotError)) return bad("max_rot_error", g.max_rot_error, range("(0", kMaxRotError, "rad").c_str());
  if (!posUpTo(g.max_joint_error, kMaxJointError)) {
    return bad("max_joint_error", g.max_joint_error, range("(0", kMaxJointError, "rad").c_str());
  }
  if (!upTo(g.max_ee_speed, kMaxEeSpeed)) return bad("max_ee_speed", g.max_ee_speed, range("[0", kMaxEeSpeed, "m/s").c_str());
  if (!upTo(g.max_ee_ang_speed, kMaxEeAngSpeed)) {
    return bad("max_ee_ang_speed", g.max_ee_ang_speed, range("[0", kMaxEeAngSpeed, "rad/s").c_str());
  }
  if (!upTo(g.gripper_kp, kMaxGripperKp)) return bad("gripper_kp", g.gripper_kp, range("[0", kMaxGripperKp, "N/m").c_str());
  if (!upTo(g.gripper_kd, kMaxGripperKd)) return bad("gripper_kd", g.gripper_kd, range("[0", kMaxGripperKd, "N s/m").c_str());
  return {};
}

std::string ControllerConfig::validate() const {
  if (!(std::isfinite(loop_hz) && loop_hz >= 0.0)) return bad("loop_hz", loop_hz, "finite and >= 0 (0 = backend rate)");
  if (!pos(policy_hz)) return bad("policy_hz", policy_hz, "finite and > 0 (Hz)");
  if (!nonneg(watchdog_timeout_s)) return bad("watchdog_timeout_s", watchdog_timeout_s, ">= 0 (s, 0 = 3 / policy_hz)");
  if (!nonneg(interp_duration_s)) return bad("interp_duration_s", interp_duration_s, ">= 0 (s, 0 = 1 / policy_hz)");
  if (n_joints < 1 || n_joints > kMaxDof) {
    return bad("n_joints", n_joints, ("in [1, " + std::to_string(kMaxDof) + "]").c_str());
  }
  const size_t n = static_cast<size_t>(n_joints);
  const std::pair<const char*, const std::vector<double>*> per_joint[] = {
      {"joint_kp", &joint_kp}, {"joint_kd", &joint_kd}, {"posture", &posture}, {"armature", &armature}};
  for (const auto& [name, values] : per_joint) {
    const bool may_be_empty = values == &posture || values == &armature;
    if (values->size() != n && !(may_be_empty && values->empty())) {
      std::ostringstream os;
      os << name << " must have " << n << " values (n_joints), got " << values->size();
      return os.str();
    }
  }
  if (output_mode != OutputMode::kTorque && output_mode != OutputMode::kJointPd) {
    return bad("output_mode", static_cast<int>(output_mode), "torque or joint_pd");
  }
  std::string e = validateGains(gains());
  if (!e.empty()) return e;
  if (!pos(osc_min_eig)) return bad("osc_min_eig", osc_min_eig, "finite and > 0 (1/kg)");
  for (const double p : posture) {
    if (std::isinf(p)) return bad("posture", p, "finite or NaN (= captured at reset)");
  }
  for (const double a : armature) {
    if (std::isinf(a) || a < 0) return bad("armature", a, ">= 0 or NaN (kg m^2)");
  }
  if (!upTo(ik_gain, 1000.0)) return bad("ik_gain", ik_gain, "finite and in [0, 1000] (1/s)");
  if (!upTo(ik_damping, 1.0)) return bad("ik_damping", ik_damping, "finite and in [0, 1] (m)");
  if (!upTo(ik_posture_gain, 100.0)) return bad("ik_posture_gain", ik_posture_gain, "finite and in [0, 100] (1/s)");
  if (!pos(state_timeout_s)) return bad("state_timeout_s", state_timeout_s, "finite and > 0 (s)");
  if (!nonneg(gripper_max_force)) return bad("gripper_max_force", gripper_max_force, "finite and >= 0 (N)");
  if (!pos(gripper_max_width)) return bad("gripper_max_width", gripper_max_width, "finite and > 0 (m)");
  if (!nonneg(hold_damping_scale)) return bad("hold_damping_scale", hold_damping_scale, "finite and >= 0");
  if (!nonneg(joint_limit_margin)) return bad("joint_limit_margin", joint_limit_margin, "finite and >= 0 (rad)");
  if (!nonneg(joint_limit_kp)) return bad("joint_limit_kp", joint_limit_kp, "finite and >= 0 (N m/rad)");
  if (!nonneg(joint_limit_kd)) return bad("joint_limit_kd", joint_limit_kd, "finite and >= 0 (N m s/rad)");
  if (!pos(velocity_limit_scale)) return bad("velocity_limit_scale", velocity_limit_scale, "finite and > 0");
  if (!nonneg(velocity_limit_kd)) return bad("velocity_limit_kd", velocity_limit_kd, "finite and >= 0 (N m s/rad)");
  if (!pos(torque_limit_scale)) return bad("torque_limit_scale", torque_limit_scale, "finite and > 0");
  if (!pos(torque_rate_limit)) return bad("torque_rate_limit", torque_rate_limit, "finite and > 0 (N m/s)");
  for (int k = 0; k < 3; ++k) {
    if (!std::isfinite(workspace_min[k]) || !std::isfinite(workspace_max[k]) || workspace_min[k] >= workspace_max[k]) {
      return bad("workspace_min", workspace_min[k], "finite and < workspace_max on every axis (m)");
    }
  }
  if (!nonneg(workspace_kp)) return bad("workspace_kp", workspace_kp, "finite and >= 0 (N/m)");
  if (!nonneg(workspace_kd)) return bad("workspace_kd", workspace_kd, "finite and >= 0 (N s/m)");
  if (!(quat_norm_tolerance > 0 && quat_norm_tolerance < 1)) {
    return bad("quat_norm_tolerance", quat_norm_tolerance, "in (0, 1)");
  }
  // --- joint-limit braking (hardening, issue 22)
  if (!upTo(joint_brake_margin, 0.5)) return bad("joint_brake_margin", joint_brake_margin, "finite and in [0, 0.5] (rad)");
  if (!posUpTo(joint_brake_torque_fraction, 1.0)) {
    return bad("joint_brake_torque_fraction", joint_brake_torque_fraction, "finite and in (0, 1]");
  }
  if (rt_priority < 0 || rt_priority > 99) return bad("rt_priority", rt_priority, "in [0, 99] (0 = SCHED_OTHER)");
  if (cpu_affinity < -1) return bad("cpu_affinity", cpu_affinity, ">= -1 (-1 = no pinning)");
  if (stats_window < 16 || stats_window > (1 << 24)) return bad("stats_window", stats_window, "in [16, 16777216]");
  // wake-up (issue 24); the period is known here only when loop_hz is set (else checked at construction)
  if (wake_mode != WakeMode::kSleep && wake_mode != WakeMode::kSpin) {
    return bad("wake_mode", static_cast<int>(wake_mode), "sleep or spin");
  }
  e = validateSpinMargin(spin_margin_us, loop_hz > 0 ? 1e6 / loop_hz : std::numeric_limits<double>::infinity());
  if (!e.empty()) return e;
  return {};
}

std::string validateSpinMargin(double margin_us, double period_us) {
  const double max_us = kMaxSpinFraction * period_us;
  if (nonneg(margin_us) && margin_us <= max_us) return {};
  std::ostringstream range;
  range << "in [0, ";
  if (std::isfinite(max_us)) {
    range << max_us;
  } else {
    range << kMaxSpinFraction << " x period";
  }
  range << "] (us; 0 = calibrated, at most " << kMaxSpinFraction << " x the loop period)";
  return bad("spin_margin_us", margin_us, range.str().c_str());
}

}  // namespace robo::rt
