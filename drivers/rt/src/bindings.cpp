// Python bindings (nanobind). Docstrings come from the headers' Doxygen comments (ROBO_DOC, generated
// by tools/gen_docstrings.py). Every call that may wait or tick releases the GIL.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "robo_rt/external_backend.hpp"
#include "robo_rt/mujoco_controller.hpp"
#include "robo_rt/unitree_crc.hpp"
#include "robo_rt/wake.hpp"
#ifdef ROBO_RT_WITH_FRANKA
#include "robo_rt/franka_backend.hpp"
#endif
#include "robo_rt_docs.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace nb = nanobind;
using namespace nb::literals;
using namespace robo::rt;

namespace {

using Array1 = nb::ndarray<nb::numpy, double, nb::ndim<1>>;
using Array2 = nb::ndarray<nb::numpy, double, nb::ndim<2>>;

Array1 array1(const double* p, size_t n) {
  double* buf = new double[n];
  std::copy(p, p + n, buf);
  nb::capsule owner(buf, [](void* ptr) noexcept { delete[] static_cast<double*>(ptr); });
  return Array1(buf, {n}, owner);
}

template <class Derived>
Array1 array1(const Eigen::MatrixBase<Derived>& v) {
  const Eigen::VectorXd tmp = v;
  return array1(tmp.data(), static_cast<size_t>(tmp.size()));
}

template <class Derived>
Array2 array2(const Eigen::MatrixBase<Derived>& m) {  // row-major copy
  const size_t r = static_cast<size_t>(m.rows()), c = static_cast<size_t>(m.cols());
  double* buf = new double[r * c];
  for (size_t i = 0; i < r; ++i)
    for (size_t j = 0; j < c; ++j) buf[i * c + j] = m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
  nb::capsule owner(buf, [](void* ptr) noexcept { delete[] static_cast<double*>(ptr); });
  return Array2(buf, {r, c}, owner);
}

Array1 quatWxyz(const Quat& q) {
  const double w[4] = {q.w(), q.x(), q.y(), q.z()};
  return array1(w, 4);
}

nb::dict limitsDict(const Limits& L) {
  nb::dict out;
  out["q_min"] = array1(L.q_min);
  out["q_max"] = array1(L.q_max);
  out["dq_max"] = array1(L.dq_max);
  out["tau_max"] = array1(L.tau_max);
  return out;
}

nb::dict commandDict(const JointCommand& c) {
  nb::dict d;
  d["drive_pd"] = c.drive_pd;
  d["tau"] = array1(c.tau);
  d["q"] = array1(c.q);
  d["dq"] = array1(c.dq);
  d["kp"] = array1(c.kp);
  d["kd"] = array1(c.kd);
  d["tau_ff"] = array1(c.tau_ff);
  d["gripper_force"] = c.gripper_force;
  return d;
}

nb::dict percentilesDict(const Percentiles& p) {
  nb::dict d;
  d["p50"] = p.p50;
  d["p99"] = p.p99;
  d["p999"] = p.p999;
  d["max"] = p.max;
  d["mean"] = p.mean;
  d["n"] = p.n;
  return d;
}

// (K, 3) / (K, 4) arrays of per-TCP values; a one-TCP robot keeps the flat (3,) / (4,) shapes.
nb::object perTcp(const std::array<Vec3, kMaxTcps>& v, int k) {
  if (k == 1) return nb::cast(array1(v[0]));
  MatMax<kMaxTcps, 3> m(k, 3);
  for (int i = 0; i < k; ++i) m.row(i) = v[static_cast<size_t>(i)].transpose();
  return nb::cast(array2(m));
}

nb::object perTcpQuat(const std::array<Quat, kMaxTcps>& q, int k) {
  if (k == 1) return nb::cast(quatWxyz(q[0]));
  MatMax<kMaxTcps, 4> m(k, 4);
  for (int i = 0; i < k; ++i) m.row(i) << q[static_cast<size_t>(i)].w(), q[static_cast<size_t>(i)].x(),
      q[static_cast<size_t>(i)].y(), q[static_cast<size_t>(i)].z();
  return nb::cast(array2(m));
}

VecN toVecN(const std::vector<double>& v) {
  if (v.size() > static_cast<size_t>(kMaxDof)) throw nb::value_error("more values than robo.rt.MAX_DOF joints");
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

nb::dict gainsDict(const Gains& g, int n) {
  nb::dict d;
  d["joint_kp"] = array1(g.joint_kp.data(), static_cast<size_t>(n));
  d["joint_kd"] = array1(g.joint_kd.data(), static_cast<size_t>(n));
  d["cart_kp_pos"] = g.cart_kp_pos;
  d["cart_kp_rot"] = g.cart_kp_rot;
  d["cart_damping_ratio"] = g.cart_damping_ratio;
  d["nullspace_kp"] = g.nullspace_kp;
  d["nullspace_kd"] = g.nullspace_kd;
  d["max_pos_error"] = g.max_pos_error;
  d["max_rot_error"] = g.max_rot_error;
  d["max_joint_error"] = g.max_joint_error;
  d["max_ee_speed"] = g.max_ee_speed;
  d["max_ee_ang_speed"] = g.max_ee_ang_speed;
  d["gripper_kp"] = g.gripper_kp;
  d["gripper_kd"] = g.gripper_kd;
  return d;
}

template <class T>
T* addressOf(nb::handle obj, const char* type_name) {
  const std::string name = nb::cast<std::string>(obj.type().attr("__name__"));
  if (name != type_name) {
    throw nb::type_error((std::string("expected mujoco.") + type_name + ", got " + name).c_str());
  }
  return reinterpret_cast<T*>(nb::cast<std::uintptr_t>(obj.attr("_address")));
}

std::string setGainsDoc() {
  std::string doc = ROBO_DOC(Runtime, setGains);
  doc += "\n\nKeyword arguments (None keeps the current value):\n";
  const std::pair<const char*, const char*> fields[] = {
      {"joint_kp", ROBO_DOC(Gains, joint_kp)},         {"joint_kd", ROBO_DOC(Gains, joint_kd)},
      {"cart_kp_pos", ROBO_DOC(Gains, cart_kp_pos)},   {"cart_kp_rot", ROBO_DOC(Gains, cart_kp_rot)},
      {"cart_damping_ratio", ROBO_DOC(Gains, cart_damping_ratio)},
      {"nullspace_kp", ROBO_DOC(Gains, nullspace_kp)}, {"nullspace_kd", ROBO_DOC(Gains, nullspace_kd)},
      {"max_pos_error", ROBO_DOC(Gains, max_pos_error)}, {"max_rot_error", ROBO_DOC(Gains, max_rot_error)},
      {"max_joint_error", ROBO_DOC(Gains, max_joint_error)}, {"max_ee_speed", ROBO_DOC(Gains, max_ee_speed)}, {"max_ee_ang_speed", ROBO_DOC(Gains, max_ee_ang_speed)},
      {"gripper_kp", ROBO_DOC(Gains, gripper_kp)},     {"gripper_kd", ROBO_DOC(Gains, gripper_kd)}};
  for (const auto& [name, text] : fields) doc += std::string("    ") + name + ": " + text + "\n";
  return doc;
}

}  // namespace

// The methods every controller shares (MuJoCo or hardware).
template <class T>
void addRuntimeMethods(nb::class_<T>& cls) {
  static const std::string set_gains_doc = setGainsDoc();
  using OptV = std::optional<std::vector<double>>;
  using OptD = std::optional<double>;
  cls
      .def("reset", &Runtime::reset, nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, reset))
      .def("set_ee_target", &Runtime::setEeTarget, "pos"_a, "quat_wxyz"_a, "gripper_width"_a,
           nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, setEeTarget))
      .def("set_ee_targets", &Runtime::setEeTargets, "pos"_a, "quat_wxyz"_a, "gripper_width"_a,
           nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, setEeTargets))
      .def("set_joint_target", &Runtime::setJointTarget, "q"_a, "gripper_width"_a,
           nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, setJointTarget))
      .def("set_chunk", &Runtime::setChunk, "t"_a, "pos"_a, "quat_wxyz"_a, "gripper_width"_a,
           nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, setChunk))
      .def("set_joint_chunk", &Runtime::setJointChunk, "t"_a, "q"_a, "gripper_width"_a,
           nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, setJointChunk))
      .def("step", &Runtime::step, "n_ticks"_a = 1, nb::call_guard<nb::gil_scoped_release>(),
           ROBO_DOC(Runtime, step))
      .def("start", &Runtime::start, "realtime"_a = true, nb::call_guard<nb::gil_scoped_release>(),
           ROBO_DOC(Runtime, start))
      .def("stop", &Runtime::stop, nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, stop))
      .def_prop_ro("running", &Runtime::running, ROBO_DOC(Runtime, running))
      .def_prop_ro("loop_hz", &Runtime::loopHz, ROBO_DOC(Runtime, loopHz))
      .def("now", &Runtime::now, ROBO_DOC(Runtime, now))
      .def("rearm", &Runtime::rearm, nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, rearm))
      .def_prop_ro("held", &Runtime::held, ROBO_DOC(Runtime, held))
      .def_prop_ro("n_joints", &Runtime::nJoints, ROBO_DOC(Runtime, nJoints))
      .def_prop_ro("n_tcps", &Runtime::nTcps, ROBO_DOC(Runtime, nTcps))
      .def("robot", &Runtime::robot, ROBO_DOC(Runtime, robot))
      .def(
          "state",
          [](const T& self) {
            Snapshot s;
            {
              nb::gil_scoped_release release;
              s = self.state();
            }
            nb::dict d;
            d["t"] = s.t;
            d["tick"] = s.tick;
            d["mode"] = modeName(s.mode);
            d["held"] = (s.mode == Mode::kHold);
            d["q"] = array1(s.state.q);
            d["dq"] = array1(s.state.dq);
            d["gripper_width"] = s.state.gripper_width;
            d["ee_pos"] = perTcp(s.ee_pos, s.n_tcp);
            d["ee_quat_wxyz"] = perTcpQuat(s.ee_quat, s.n_tcp);
            d["tau"] = array1(s.tau);
            d["gripper_force"] = s.gripper_force;
            d["ref_space"] = s.ref.space == TargetSpace::kJoint ? "joint" : "cartesian";
            d["ref_q"] = array1(s.ref.q);
            d["ref_ee_pos"] = perTcp(s.ref.p, s.n_tcp);
            d["ref_ee_quat_wxyz"] = perTcpQuat(s.ref.quat, s.n_tcp);
            d["ref_gripper_width"] = s.ref.width;
            return d;
          },
          ROBO_DOC(Runtime, state))
      .def(
          "stats",
          [](const T& self) {
            StatsSummary s;
            {
              nb::gil_scoped_release release;
              s = self.stats();
            }
            nb::dict d;
            d["ticks"] = s.ticks;
            d["overruns"] = s.overruns;
            d["period_us"] = s.period_us;
            d["max_lateness_us"] = s.max_lateness_us;
            d["max_compute_us"] = s.max_compute_us;
            d["lateness_us"] = percentilesDict(s.lateness);
            d["compute_us"] = percentilesDict(s.compute);
            d["tick_us"] = percentilesDict(s.tick);
            // wake-up and CPU cost (issue 24)
            d["wakeup_us"] = percentilesDict(s.wakeup);
            d["spin_margin_us"] = s.spin_margin_us;
            d["late_wakeups"] = s.late_wakeups;
            d["loop_cpu_s"] = s.loop_cpu_s;
            d["loop_wall_s"] = s.loop_wall_s;
            d["loop_cpu_fraction"] = s.loop_cpu_fraction;
            d["spin_s"] = s.spin_s;
            return d;
          },
          ROBO_DOC(Runtime, stats))
      .def("reset_stats", &Runtime::resetStats, ROBO_DOC(Runtime, resetStats))
      .def(
          "events",
          [](const T& self) {
            nb::dict d;
            for (const auto& [name, count] : self.events()) d[name.c_str()] = count;
            return d;
          },
          ROBO_DOC(Runtime, events))
      .def(
          "rt_status",
          [](const T& self) {
            const RtStatus s = self.rtStatus();
            nb::dict d;
            d["sched_fifo"] = s.sched_fifo;
            d["memory_locked"] = s.memory_locked;
            d["cpu_pinned"] = s.cpu_pinned;
            d["warning"] = s.warning;
            return d;
          },
          ROBO_DOC(Runtime, rtStatus))
      .def("gains", [](const T& self) { return gainsDict(self.gains(), self.nJoints()); }, ROBO_DOC(Runtime, gains))
      .def(
          "set_gains",
          [](T& self, OptV joint_kp, OptV joint_kd, OptD cart_kp_pos, OptD cart_kp_rot,
             OptD cart_damping_ratio, OptD nullspace_kp, OptD nullspace_kd, OptD max_pos_error,
             OptD max_rot_error, OptD max_joint_error, OptD max_ee_speed, OptD max_ee_ang_speed, OptD gripper_kp, OptD gripper_kd) {
            const size_t n = static_cast<size_t>(self.nJoints());
            for (const auto* v : {&joint_kp, &joint_kd}) {
              if (*v && (*v)->size() != n) {
                throw nb::value_error(((v == &joint_kp ? std::string("joint_kp") : std::string("joint_kd")) + " has " +
                                       std::to_string((*v)->size()) + " values, the controller has " +
                                       std::to_string(n) + " joints").c_str());
              }
            }
            nb::gil_scoped_release release;
            Gains g = self.gains();
            if (joint_kp) std::copy(joint_kp->begin(), joint_kp->end(), g.joint_kp.begin());
            if (joint_kd) std::copy(joint_kd->begin(), joint_kd->end(), g.joint_kd.begin());
            if (cart_kp_pos) g.cart_kp_pos = *cart_kp_pos;
            if (cart_kp_rot) g.cart_kp_rot = *cart_kp_rot;
            if (cart_damping_ratio) g.cart_damping_ratio = *cart_damping_ratio;
            if (nullspace_kp) g.nullspace_kp = *nullspace_kp;
            if (nullspace_kd) g.nullspace_kd = *nullspace_kd;
            if (max_pos_error) g.max_pos_error = *max_pos_error;
            if (max_rot_error) g.max_rot_error = *max_rot_error;
            if (max_joint_error) g.max_joint_error = *max_joint_error;
            if (max_ee_speed) g.max_ee_speed = *max_ee_speed;
            if (max_ee_ang_speed) g.max_ee_ang_speed = *max_ee_ang_speed;
            if (gripper_kp) g.gripper_kp = *gripper_kp;
            if (gripper_kd) g.gripper_kd = *gripper_kd;
            return self.setGains(g);
          },
          nb::kw_only(), "joint_kp"_a = nb::none(), "joint_kd"_a = nb::none(), "cart_kp_pos"_a = nb::none(),
          "cart_kp_rot"_a = nb::none(), "cart_damping_ratio"_a = nb::none(), "nullspace_kp"_a = nb::none(),
          "nullspace_kd"_a = nb::none(), "max_pos_error"_a = nb::none(), "max_rot_error"_a = nb::none(),
          "max_joint_error"_a = nb::none(), "max_ee_speed"_a = nb::none(), "max_ee_ang_speed"_a = nb::none(),
          "gripper_kp"_a = nb::none(), "gripper_kd"_a = nb::none(), set_gains_doc.c_str())
      .def("limits", [](const T& self) { return limitsDict(self.limits()); }, ROBO_DOC(Runtime, limits));
}

NB_MODULE(_rt, m) {
  m.doc() = "robo real-time controller (C++): joint impedance, operational-space control, safety "
            "layer, watchdog and a real-time loop over MuJoCo or hardware backends.";
  m.attr("MAX_DOF") = kMaxDof;
  m.attr("MAX_TCPS") = kMaxTcps;
  m.attr("MAX_WAYPOINTS") = kMaxWaypoints;
  m.attr("MAX_CHUNK_HORIZON_S") = kMaxChunkHorizon;
  nb::list names;
  for (const char* n : kEventNames) names.append(n);
  m.attr("EVENT_NAMES") = names;
  // gain ceilings (hardening, issue 22): the largest value set_gains accepts per field
  nb::dict gain_limits;
  gain_limits["joint_kp"] = kMaxJointKp;
  gain_limits["joint_kd"] = kMaxJointKd;
  gain_limits["cart_kp_pos"] = kMaxCartKp;
  gain_limits["cart_kp_rot"] = kMaxCartKp;
  gain_limits["cart_damping_ratio"] = kMaxCartDampingRatio;
  gain_limits["nullspace_kp"] = kMaxNullspaceKp;
  gain_limits["nullspace_kd"] = kMaxNullspaceKd;
  gain_limits["max_pos_error"] = kMaxPosError;
  gain_limits["max_rot_error"] = kMaxRotError;
  gain_limits["max_joint_error"] = kMaxJointError;
  gain_limits["max_ee_speed"] = kMaxEeSpeed;
  gain_limits["max_ee_ang_speed"] = kMaxEeAngSpeed;
  gain_limits["gripper_kp"] = kMaxGripperKp;
  gain_limits["gripper_kd"] = kMaxGripperKd;
  m.attr("GAIN_LIMITS") = gain_limits;
#ifdef ROBO_RT_WITH_FRANKA
  m.attr("HAS_FRANKA") = true;
#else
  m.attr("HAS_FRANKA") = false;
#endif

  m.def(
      "unitree_crc",
      [](nb::bytes data) {
        const size_t n = data.size();
        if (n % 4 != 0 || n < 4) throw nb::value_error("unitree_crc: the message image must be a whole number of 32-bit words");
        return unitreeCrc(static_cast<const std::uint8_t*>(static_cast<const void*>(data.c_str())), n / 4 - 1);
      },
      "data"_a,
      "CRC a Unitree robot checks on a LowCmd_/LowState_ (unitree_sdk2 crc32_core: CRC-32/MPEG-2 over "
      "32-bit little-endian words, most significant bit first) of `data`, the message's C struct image "
      "(bytes, a multiple of 4), over every word but the last (the crc field itself).");
  nb::enum_<OutputMode>(m, "OutputMode", "How the controller's output reaches the joints: torques, or a PD command the drives run.")
      .value("torque", OutputMode::kTorque)
      .value("joint_pd", OutputMode::kJointPd);
  nb::enum_<Interpolation>(m, "Interpolation", "Time scaling between targets.")
      .value("linear", Interpolation::kLinear)
      .value("min_jerk", Interpolation::kMinJerk);
  nb::enum_<WakeMode>(m, "WakeMode",
                     "How the real-time loop waits for a deadline: sleep, or sleep then spin (issue 24).")
      .value("sleep", WakeMode::kSleep)
      .value("spin", WakeMode::kSpin);
  m.attr("MAX_SPIN_FRACTION") = kMaxSpinFraction;
  m.attr("MIN_SPIN_MARGIN_US") = kMinSpinMarginUs;
  m.attr("SPIN_QUANTILE") = kSpinQuantile;
  // The loop's spin-margin estimator on its own, so tests can feed it known wake-up latencies.
  nb::class_<SpinMargin>(m, "_SpinMargin", ROBO_CLASS_DOC(SpinMargin))
      .def(nb::init<double, double>(), "fixed_us"_a, "max_us"_a, ROBO_DOC(SpinMargin, SpinMargin))
      .def("observe", &SpinMargin::observe, "latency_us"_a, ROBO_DOC(SpinMargin, observe))
      .def_prop_ro("us", &SpinMargin::us, ROBO_DOC(SpinMargin, us))
      .def_prop_ro("calibrated", &SpinMargin::calibrated, ROBO_DOC(SpinMargin, calibrated));
  m.attr("SPIN_CALIBRATION_SAMPLES") = SpinMargin::kCalibrationSamples;

#define CFG_FIELD(name) .def_rw(#name, &ControllerConfig::name, ROBO_DOC(ControllerConfig, name))
  nb::class_<ControllerConfig>(m, "_ControllerConfig", ROBO_CLASS_DOC(ControllerConfig))
      .def(nb::init<>())
      CFG_FIELD(n_joints) CFG_FIELD(output_mode) CFG_FIELD(ik_gain) CFG_FIELD(ik_damping) CFG_FIELD(ik_posture_gain)
      CFG_FIELD(state_timeout_s)
      CFG_FIELD(loop_hz) CFG_FIELD(policy_hz) CFG_FIELD(watchdog_timeout_s) CFG_FIELD(interp_duration_s)
      CFG_FIELD(interpolation) CFG_FIELD(joint_kp) CFG_FIELD(joint_kd) CFG_FIELD(cart_kp_pos)
      CFG_FIELD(cart_kp_rot) CFG_FIELD(cart_damping_ratio) CFG_FIELD(nullspace_kp) CFG_FIELD(nullspace_kd)
      CFG_FIELD(max_pos_error) CFG_FIELD(max_rot_error) CFG_FIELD(max_joint_error) CFG_FIELD(max_ee_speed) CFG_FIELD(max_ee_ang_speed) CFG_FIELD(osc_min_eig) CFG_FIELD(posture)
      CFG_FIELD(armature) CFG_FIELD(gripper_kp) CFG_FIELD(gripper_kd) CFG_FIELD(gripper_max_force)
      CFG_FIELD(gripper_max_width) CFG_FIELD(hold_damping_scale) CFG_FIELD(joint_limit_margin)
      CFG_FIELD(joint_limit_kp) CFG_FIELD(joint_limit_kd) CFG_FIELD(velocity_limit_scale)
      CFG_FIELD(velocity_limit_kd) CFG_FIELD(torque_limit_scale) CFG_FIELD(torque_rate_limit)
      CFG_FIELD(workspace_min) CFG_FIELD(workspace_max) CFG_FIELD(workspace_kp) CFG_FIELD(workspace_kd)
      CFG_FIELD(quat_norm_tolerance) CFG_FIELD(rt_priority) CFG_FIELD(lock_memory) CFG_FIELD(cpu_affinity)
      CFG_FIELD(stats_window)
      CFG_FIELD(wake_mode) CFG_FIELD(spin_margin_us)  // wake-up (issue 24)
      CFG_FIELD(joint_brake_margin) CFG_FIELD(joint_brake_torque_fraction)  // joint-limit braking (issue 22)
      .def("validate", &ControllerConfig::validate, ROBO_DOC(ControllerConfig, validate));
#undef CFG_FIELD

  nb::class_<JointGroup>(m, "JointGroup", ROBO_CLASS_DOC(JointGroup))
      .def(nb::init<>())
      .def("__init__",
           [](JointGroup* self, const std::string& name, const std::vector<std::string>& joints, const std::string& tcp) {
             new (self) JointGroup{name, joints, tcp};
           },
           "name"_a, "joints"_a, "tcp"_a = "")
      .def_rw("name", &JointGroup::name, ROBO_DOC(JointGroup, name))
      .def_rw("joints", &JointGroup::joints, ROBO_DOC(JointGroup, joints))
      .def_rw("tcp", &JointGroup::tcp, ROBO_DOC(JointGroup, tcp));
  nb::class_<RobotDescription>(m, "RobotDescription", ROBO_CLASS_DOC(RobotDescription))
      .def(nb::init<>())
      .def_rw("groups", &RobotDescription::groups, ROBO_DOC(RobotDescription, groups))
      .def_rw("tcp_frames", &RobotDescription::tcp_frames, ROBO_DOC(RobotDescription, tcp_frames))
      .def_rw("actuators", &RobotDescription::actuators, ROBO_DOC(RobotDescription, actuators))
      .def_rw("fingers", &RobotDescription::fingers, ROBO_DOC(RobotDescription, fingers))
      .def_rw("gripper_actuator", &RobotDescription::gripper_actuator, ROBO_DOC(RobotDescription, gripper_actuator))
      .def("joints", &RobotDescription::joints, ROBO_DOC(RobotDescription, joints))
      .def("validate", [](const RobotDescription& d) { return d.validate(kMaxDof, kMaxTcps); },
           ROBO_DOC(RobotDescription, validate))
      .def_static("panda", &RobotDescription::panda, ROBO_DOC(RobotDescription, panda));

  nb::class_<RobotModel>(m, "RobotModel", ROBO_CLASS_DOC(RobotModel))
      .def(nb::init<const std::string&, const std::vector<std::string>&, const std::string&>(), "urdf_path"_a,
           "arm_joints"_a = MujocoController::armJoints(), "tcp_frame"_a = "tcp", ROBO_DOC(RobotModel, RobotModel))
      .def(nb::init<const std::string&, const RobotDescription&>(), "urdf_path"_a, "robot"_a,
           ROBO_DOC(RobotModel, RobotModel))
      .def_prop_ro("n_joints", &RobotModel::nJoints, ROBO_DOC(RobotModel, nJoints))
      .def_prop_ro("n_tcps", &RobotModel::nTcps, ROBO_DOC(RobotModel, nTcps))
      .def("set_armature", [](RobotModel& self, const std::vector<double>& a) { self.setArmature(toVecN(a)); },
           "armature"_a, ROBO_DOC(RobotModel, setArmature))
      .def(
          "compute",
          [](RobotModel& self, const std::vector<double>& q, const std::vector<double>& dq) {
            const size_t n = static_cast<size_t>(self.nJoints());
            if (q.size() != n || dq.size() != n) {
              throw nb::value_error(("q and dq must have " + std::to_string(n) + " values").c_str());
            }
            Dynamics d(self.nJoints(), self.nTcps());
            self.compute(toVecN(q), toVecN(dq), d);
            nb::dict out;
            out["tcp_pos"] = perTcp(d.world_p_tcp, d.n_tcp);
            if (d.n_tcp == 1) {
              out["tcp_rot"] = array2(d.world_R_tcp[0]);
            } else {
              nb::list rots;
              for (int k = 0; k < d.n_tcp; ++k) rots.append(array2(d.world_R_tcp[static_cast<size_t>(k)]));
              out["tcp_rot"] = rots;
            }
            out["J"] = array2(d.J);
            out["M"] = array2(d.M);
            out["nle"] = array1(d.nle);
            out["g"] = array1(d.g);
            return out;
          },
          "q"_a, "dq"_a, ROBO_DOC(RobotModel, compute))
      .def("limits", [](const RobotModel& self) { return limitsDict(self.limits()); }, ROBO_DOC(RobotModel, limits));

  auto mujoco_cls = nb::class_<MujocoController>(m, "MujocoController", ROBO_CLASS_DOC(MujocoController))
      .def(
          "__init__",
          [](MujocoController* self, nb::handle model, nb::handle data, const std::string& urdf_path,
             const ControllerConfig& cfg, const RobotDescription& robot) {
            const mjModel_* mp = addressOf<const mjModel_>(model, "MjModel");
            mjData_* dp = addressOf<mjData_>(data, "MjData");
            new (self) MujocoController(mp, dp, urdf_path, cfg, robot);
          },
          "model"_a, "data"_a, "urdf_path"_a, "config"_a, "robot"_a = RobotDescription::panda(),
          nb::keep_alive<1, 2>(), nb::keep_alive<1, 3>(), ROBO_DOC(MujocoController, MujocoController));
  addRuntimeMethods(mujoco_cls);
  mujoco_cls.def(
      "physics_state",
      [](MujocoController& self) {
        PhysicsState w;
        bool ok;
        {
          nb::gil_scoped_release release;
          ok = self.physicsState(w);
        }
        if (!ok) throw std::runtime_error("robo.rt: the model is too large to mirror (nq or nv above 128)");
        nb::dict d;
        d["t"] = w.t;
        d["qpos"] = array1(w.qpos.data(), static_cast<size_t>(w.nq));
        d["qvel"] = array1(w.qvel.data(), static_cast<size_t>(w.nv));
        return d;
      },
      ROBO_DOC(MujocoController, physicsState));

  auto external_cls = nb::class_<ExternalController>(m, "ExternalController", ROBO_CLASS_DOC(ExternalController))
      .def(nb::init<const std::string&, const RobotDescription&, const ControllerConfig&, double, double>(),
           "urdf_path"_a, "robot"_a, "config"_a, "rate_hz"_a, "stale_after_s"_a,
           nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(ExternalController, ExternalController))
      .def(
          "push_state",
          [](ExternalController& self, const std::vector<double>& q, const std::vector<double>& dq,
             const std::vector<double>& tau) {
            const VecN vq = toVecN(q), vdq = toVecN(dq), vtau = toVecN(tau);
            nb::gil_scoped_release release;
            return self.pushState(vq, vdq, vtau);
          },
          "q"_a, "dq"_a, "tau"_a, ROBO_DOC(ExternalController, pushState))
      .def(
          "take_command",
          [](ExternalController& self) -> nb::object {
            JointCommand c;
            bool have;
            {
              nb::gil_scoped_release release;
              have = self.takeCommand(c);
            }
            if (!have) return nb::none();
            return commandDict(c);
          },
          ROBO_DOC(ExternalController, takeCommand))
      .def(
          "io_stats",
          [](const ExternalController& self) {
            nb::dict d;
            d["states_pushed"] = self.external().statesPushed();
            d["states_refused"] = self.external().statesRefused();
            return d;
          },
          "States pushed and refused (wrong size, not finite) so far.");
  addRuntimeMethods(external_cls);

#ifdef ROBO_RT_WITH_FRANKA
  auto franka_cls = nb::class_<FrankaController>(m, "FrankaController", ROBO_CLASS_DOC(FrankaController))
      .def(
          "__init__",
          [](FrankaController* self, const std::string& robot_ip, const std::string& urdf_path,
             const ControllerConfig& cfg, bool enforce_realtime, bool use_gripper) {
            FrankaOptions opt;
            opt.robot_ip = robot_ip;
            opt.enforce_realtime = enforce_realtime;
            opt.use_gripper = use_gripper;
            new (self) FrankaController(opt, urdf_path, cfg);
          },
          "robot_ip"_a, "urdf_path"_a, "config"_a, "enforce_realtime"_a = true, "use_gripper"_a = true,
          nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(FrankaController, FrankaController));
  addRuntimeMethods(franka_cls);
#endif
}
