// Python bindings (nanobind). Docstrings come from the headers' Doxygen comments (ROBO_DOC, generated
// by tools/gen_docstrings.py). Every call that may wait or tick releases the GIL.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "robo_rt/mujoco_controller.hpp"
#include "robo_rt/wake.hpp"
#ifdef ROBO_RT_WITH_FRANKA
#include "robo_rt/franka_backend.hpp"
#endif
#ifdef ROBO_RT_WITH_UNITREE
#include "robo_rt/unitree_backend.hpp"
#endif
#include "robo_rt_docs.hpp"

#include <algorithm>
#include <cstdint>
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

nb::dict gainsDict(const Gains& g) {
  nb::dict d;
  d["joint_kp"] = array1(g.joint_kp.data(), kDof);
  d["joint_kd"] = array1(g.joint_kd.data(), kDof);
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
  using Opt7 = std::optional<std::array<double, 7>>;
  using OptD = std::optional<double>;
  cls
      .def("reset", &Runtime::reset, nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, reset))
      .def("set_ee_target", &Runtime::setEeTarget, "pos"_a, "quat_wxyz"_a, "gripper_width"_a,
           nb::call_guard<nb::gil_scoped_release>(), ROBO_DOC(Runtime, setEeTarget))
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
            d["ee_pos"] = array1(s.ee_pos);
            d["ee_quat_wxyz"] = quatWxyz(s.ee_quat);
            d["tau"] = array1(s.tau);
            d["gripper_force"] = s.gripper_force;
            d["ref_space"] = s.ref.space == TargetSpace::kJoint ? "joint" : "cartesian";
            d["ref_q"] = array1(s.ref.q);
            d["ref_ee_pos"] = array1(s.ref.p);
            d["ref_ee_quat_wxyz"] = quatWxyz(s.ref.quat);
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
      .def("gains", [](const T& self) { return gainsDict(self.gains()); }, ROBO_DOC(Runtime, gains))
      .def(
          "set_gains",
          [](T& self, Opt7 joint_kp, Opt7 joint_kd, OptD cart_kp_pos, OptD cart_kp_rot,
             OptD cart_damping_ratio, OptD nullspace_kp, OptD nullspace_kd, OptD max_pos_error,
             OptD max_rot_error, OptD max_joint_error, OptD max_ee_speed, OptD max_ee_ang_speed, OptD gripper_kp, OptD gripper_kd) {
            nb::gil_scoped_release release;
            Gains g = self.gains();
            if (joint_kp) g.joint_kp = *joint_kp;
            if (joint_kd) g.joint_kd = *joint_kd;
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
      .def(
          "limits",
          [](const T& self) {
            const Limits& L = self.limits();
            nb::dict out;
            out["q_min"] = array1(L.q_min);
            out["q_max"] = array1(L.q_max);
            out["dq_max"] = array1(L.dq_max);
            out["tau_max"] = array1(L.tau_max);
            return out;
          },
          ROBO_DOC(Runtime, limits));
}

NB_MODULE(_rt, m) {
  m.doc() = "robo real-time controller (C++): joint impedance, operational-space control, safety "
            "layer, watchdog and a real-time loop over MuJoCo or hardware backends.";
  m.attr("DOF") = kDof;
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
#ifdef ROBO_RT_WITH_UNITREE
  m.attr("HAS_UNITREE") = true;
#else
  m.attr("HAS_UNITREE") = false;
#endif

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

  nb::class_<RobotModel>(m, "RobotModel", ROBO_CLASS_DOC(RobotModel))
      .def(nb::init<const std::string&, const std::vector<std::string>&, const std::string&>(), "urdf_path"_a,
           "arm_joints"_a = MujocoController::armJoints(), "tcp_frame"_a = "tcp", ROBO_DOC(RobotModel, RobotModel))
      .def("set_armature",
           [](RobotModel& self, const std::array<double, 7>& a) { self.setArmature(Eigen::Map<const Vec7>(a.data())); },
           "armature"_a, ROBO_DOC(RobotModel, setArmature))
      .def(
          "compute",
          [](RobotModel& self, const std::array<double, 7>& q, const std::array<double, 7>& dq) {
            Dynamics d;
            self.compute(Eigen::Map<const Vec7>(q.data()), Eigen::Map<const Vec7>(dq.data()), d);
            nb::dict out;
            out["tcp_pos"] = array1(d.world_p_tcp);
            out["tcp_rot"] = array2(d.world_R_tcp);
            out["J"] = array2(d.J);
            out["M"] = array2(d.M);
            out["nle"] = array1(d.nle);
            out["g"] = array1(d.g);
            return out;
          },
          "q"_a, "dq"_a, ROBO_DOC(RobotModel, compute))
      .def(
          "limits",
          [](const RobotModel& self) {
            const Limits& L = self.limits();
            nb::dict out;
            out["q_min"] = array1(L.q_min);
            out["q_max"] = array1(L.q_max);
            out["dq_max"] = array1(L.dq_max);
            out["tau_max"] = array1(L.tau_max);
            return out;
          },
          ROBO_DOC(RobotModel, limits));

  auto mujoco_cls = nb::class_<MujocoController>(m, "MujocoController", ROBO_CLASS_DOC(MujocoController))
      .def(
          "__init__",
          [](MujocoController* self, nb::handle model, nb::handle data, const std::string& urdf_path,
             const ControllerConfig& cfg) {
            const mjModel_* mp = addressOf<const mjModel_>(model, "MjModel");
            mjData_* dp = addressOf<mjData_>(data, "MjData");
            new (self) MujocoController(mp, dp, urdf_path, cfg);
          },
          "model"_a, "data"_a, "urdf_path"_a, "config"_a, nb::keep_alive<1, 2>(), nb::keep_alive<1, 3>(),
          ROBO_DOC(MujocoController, MujocoController));
  addRuntimeMethods(mujoco_cls);

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
#ifdef ROBO_RT_WITH_UNITREE
  auto unitree_cls = nb::class_<UnitreeController>(m, "UnitreeController", ROBO_CLASS_DOC(UnitreeController))
      .def(
          "__init__",
          [](UnitreeController* self, const std::string& network_interface, const std::string& urdf_path,
             const std::vector<std::string>& arm_joints, const std::string& tcp_frame,
             const std::array<int, 7>& arm_motors, const ControllerConfig& cfg) {
            UnitreeOptions opt;
            opt.network_interface = network_interface;
            opt.arm_motors = arm_motors;
            new (self) UnitreeController(opt, urdf_path, arm_joints, tcp_frame, cfg);
          },
          "network_interface"_a, "urdf_path"_a, "arm_joints"_a, "tcp_frame"_a, "arm_motors"_a, "config"_a,
          nb::call_guard<nb::gil_scoped_release>(), ROBO_CLASS_DOC(UnitreeController));
  addRuntimeMethods(unitree_cls);
#endif
}
