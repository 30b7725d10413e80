#include "robo_rt/runtime.hpp"

#include "robo_rt/wake.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace robo::rt {

namespace {

std::unique_ptr<RobotModel> withArmature(std::unique_ptr<RobotModel> model, const ControllerConfig& cfg,
                                         const Backend& backend) {
  const std::optional<VecN> from_backend = backend.armature();
  const int n = model->nJoints();
  VecN a(n);
  for (int i = 0; i < n; ++i) {
    const double given = i < static_cast<int>(cfg.armature.size()) ? cfg.armature[static_cast<size_t>(i)] : NAN;
    a[i] = std::isfinite(given) ? given : (from_backend && from_backend->size() == n ? (*from_backend)[i] : 0.0);
  }
  model->setArmature(a);
  return model;
}

double loopRate(const ControllerConfig& cfg, const Backend& backend) {
  return cfg.loop_hz > 0.0 ? cfg.loop_hz : backend.nativeRateHz();
}

}  // namespace

Runtime::Runtime(std::unique_ptr<Backend> backend, std::unique_ptr<RobotModel> model, const ControllerConfig& cfg)
    : backend_(std::move(backend)),
      loop_hz_(loopRate(cfg, *backend_)),
      controller_(withArmature(std::move(model), cfg, *backend_), cfg, 1.0 / loop_hz_),
      stats_(cfg.stats_window),
      cmd_(controller_.nJoints()),
      state_(controller_.nJoints()) {
  stats_.setPeriod(1e6 / loop_hz_);
  const std::string margin_error = validateSpinMargin(cfg.spin_margin_us, 1e6 / loop_hz_);
  if (!margin_error.empty()) throw std::invalid_argument(margin_error);
  if (backend_->simulated()) sim_time_.store(backend_->simTime());
  if (backend_->stateAtConstruction()) reset();
}

Runtime::~Runtime() { stop(); }

// ---- ownership of the loop: one Python call or the thread at a time -------------------------

bool Runtime::acquire(int who) {
  int expected = 0;
  return owner_.compare_exchange_strong(expected, who, std::memory_order_acq_rel);
}

void Runtime::release() { owner_.store(0, std::memory_order_release); }

void Runtime::waitServed(std::uint64_t ticket) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!controller_.served(ticket)) {
    if (acquire(1)) {  // nobody ticks: serve it here
      if (backend_->simulated()) sim_time_.store(backend_->simTime());
      const bool fresh = backend_->read(state_);
      if (fresh) {
        controller_.service(state_, now(), snap_slot_.back());
        snap_slot_.publish();
      }
      release();
      if (fresh) continue;
    }
    if (std::chrono::steady_clock::now() > give_up) {
      throw std::runtime_error("robo.rt: reset/rearm not served within 2 s (no state from the " + backend_->name() +
                               " backend, or the loop is stuck)");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void Runtime::reset() { waitServed(controller_.requestReset()); }

void Runtime::rearm() { waitServed(controller_.requestRearm()); }

// ---- commands ------------------------------------------------------------------------------

bool Runtime::setEeTarget(const std::array<double, 3>& pos, const std::array<double, 4>& quat_wxyz,
                          double gripper_width) {
  return setEeTargets({pos}, {quat_wxyz}, gripper_width);
}

bool Runtime::setEeTargets(const std::vector<std::array<double, 3>>& pos,
                           const std::vector<std::array<double, 4>>& quat_wxyz, double gripper_width) {
  std::vector<Vec3> p;
  std::vector<Eigen::Vector4d> q;
  for (const auto& x : pos) p.emplace_back(x[0], x[1], x[2]);
  for (const auto& x : quat_wxyz) q.emplace_back(x[0], x[1], x[2], x[3]);
  return controller_.setEeTargets(p, q, gripper_width, now());
}

bool Runtime::setJointTarget(const std::vector<double>& q, double gripper_width) {
  if (q.size() > static_cast<size_t>(kMaxDof)) {
    controller_.events().add(Event::rejected_out_of_range);
    return false;
  }
  return controller_.setJointTarget(Eigen::Map<const Eigen::VectorXd>(q.data(), static_cast<Eigen::Index>(q.size())),
                                    gripper_width, now());
}

bool Runtime::setChunk(const std::vector<double>& t, const std::vector<std::array<double, 3>>& pos,
                       const std::vector<std::array<double, 4>>& quat_wxyz,
                       const std::vector<double>& gripper_width) {
  const size_t n = t.size(), K = static_cast<size_t>(controller_.nTcps());
  if (pos.size() != n * K || quat_wxyz.size() != n * K || gripper_width.size() != n) {
    controller_.events().add(Event::rejected_out_of_range);
    return false;
  }
  std::vector<Waypoint> wps(n);
  for (size_t k = 0; k < n; ++k) {
    wps[k].t = t[k];
    for (size_t c = 0; c < K; ++c) {
      for (int i = 0; i < 3; ++i) wps[k].x[7 * c + static_cast<size_t>(i)] = pos[k * K + c][static_cast<size_t>(i)];
      for (int i = 0; i < 4; ++i) wps[k].x[7 * c + 3 + static_cast<size_t>(i)] = quat_wxyz[k * K + c][static_cast<size_t>(i)];
    }
    wps[k].x[7 * K] = gripper_width[k];
  }
  return controller_.setChunk(TargetSpace::kCartesian, wps, now());
}

bool Runtime::setJointChunk(const std::vector<double>& t, const std::vector<std::vector<double>>& q,
                            const std::vector<double>& gripper_width) {
  const size_t n = t.size(), dof = static_cast<size_t>(controller_.nJoints());
  bool sizes_ok = q.size() == n && gripper_width.size() == n;
  for (const auto& row : q) sizes_ok = sizes_ok && row.size() == dof;
  if (!sizes_ok) {
    controller_.events().add(Event::rejected_out_of_range);
    return false;
  }
  std::vector<Waypoint> wps(n);
  for (size_t k = 0; k < n; ++k) {
    wps[k].t = t[k];
    for (size_t i = 0; i < dof; ++i) wps[k].x[i] = q[k][i];
    wps[k].x[dof] = gripper_width[k];
  }
  return controller_.setChunk(TargetSpace::kJoint, wps, now());
}

// ---- clock, state, events ------------------------------------------------------------------

double Runtime::now() const {
  if (running_.load(std::memory_order_acquire) && realtime_.load(std::memory_order_acquire)) {
    return wall_base_t_.load() + 1e-9 * static_cast<double>(monoNs() - wall_base_ns_.load());
  }
  if (backend_->simulated()) return sim_time_.load(std::memory_order_acquire);
  return 1e-9 * static_cast<double>(monoNs());
}

Snapshot Runtime::state() const {
  std::lock_guard<std::mutex> lock(snap_read_mutex_);
  auto& slot = const_cast<LatestSlot<Snapshot>&>(snap_slot_);
  if (slot.fetch()) snap_read_ = slot.front();
  return snap_read_;
}

std::vector<std::pair<std::string, std::uint64_t>> Runtime::events() const {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (size_t i = 0; i < kEventNames.size(); ++i) out.emplace_back(kEventNames[i], controller_.events().get(i));
  return out;
}

RtStatus Runtime::rtStatus() const {
  std::lock_guard<std::mutex> lock(rt_status_mutex_);
  return rt_status_;
}

// ---- the tick --------------------------------------------------------------------------------

void Runtime::tick(double t, double lateness_us) {
  const std::int64_t t0 = monoNs();
  // No fresh state: the controller sees the previous one again; its state timeout and watchdog run.
  const bool fresh = backend_->read(state_);
  controller_.step(state_, fresh, t, cmd_, snap_slot_.back());
  backend_->write(cmd_);
  const std::int64_t t1 = monoNs();
  backend_->advance();
  if (backend_->simulated()) sim_time_.store(backend_->simTime(), std::memory_order_release);
  snap_slot_.publish();
  const std::int64_t t2 = monoNs();
  stats_.record(lateness_us, 1e-3 * static_cast<double>(t1 - t0), 1e-3 * static_cast<double>(t2 - t0));
}

void Runtime::step(int n_ticks) {
  if (n_ticks < 0) throw std::invalid_argument("robo.rt: n_ticks must be >= 0");
  if (!backend_->simulated()) throw std::runtime_error("robo.rt: step() is for simulated backends; use start()");
  if (!acquire(1)) {
    throw std::runtime_error("robo.rt: step() while the loop thread runs (or another step() is in progress); "
                             "call stop() first");
  }
  for (int i = 0; i < n_ticks; ++i) {
    const double t = backend_->simulated() ? backend_->simTime() : now();
    tick(t, -1.0);
  }
  release();
}

// ---- the thread ------------------------------------------------------------------------------

void Runtime::setupRealtime() {
  RtStatus st;
  std::string warn;
  const ControllerConfig& cfg = controller_.config();
  if (cfg.lock_memory) {
    if (mlockall(MCL_CURRENT) == 0) {
      st.memory_locked = true;
      memory_locked_by_us_ = true;
    } else {
      warn += std::string("mlockall refused (") + std::strerror(errno) +
              "): pages may fault in the loop; raise `ulimit -l` or grant CAP_IPC_LOCK. ";
    }
  }
  if (cfg.rt_priority > 0) {
    sched_param sp{};
    sp.sched_priority = cfg.rt_priority;
    const int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    if (rc == 0) {
      st.sched_fifo = true;
    } else {
      warn += std::string("SCHED_FIFO priority ") + std::to_string(cfg.rt_priority) + " refused (" +
              std::strerror(rc) +
              "): the loop runs SCHED_OTHER and wakes late by up to milliseconds; grant CAP_SYS_NICE "
              "or an rtprio limit (/etc/security/limits.conf), or use a PREEMPT_RT kernel. ";
    }
  }
  if (cfg.cpu_affinity >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cfg.cpu_affinity, &set);
    st.cpu_pinned = pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
    if (!st.cpu_pinned) warn += "CPU pinning to " + std::to_string(cfg.cpu_affinity) + " refused. ";
  }
  // 1 ns timer slack: SCHED_OTHER threads otherwise wake up to 50 us after their deadline.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  // Touch the stack the loop will use, so its pages are resident before the first deadline.
  volatile char stack[256 * 1024];  // the tick's fixed-capacity matrices live on the stack
  std::memset(const_cast<char*>(stack), 0, sizeof(stack));
  st.warning = warn;
  if (!warn.empty()) std::fprintf(stderr, "robo.rt warning: %s\n", warn.c_str());
  std::lock_guard<std::mutex> lock(rt_status_mutex_);
  rt_status_ = st;
}

void Runtime::threadMain(bool realtime) {
  const std::int64_t period_ns = static_cast<std::int64_t>(std::llround(1e9 / loop_hz_));
  if (backend_->ownsLoop()) {  // the device paces the ticks (libfranka): no lateness to measure here
    const std::string error = backend_->runOwnLoop([this](const RobotState& s, JointCommand& out) {
      const std::int64_t t0 = monoNs();
      const double t = wall_base_t_.load(std::memory_order_relaxed) +
                       1e-9 * static_cast<double>(t0 - wall_base_ns_.load(std::memory_order_relaxed));
      controller_.step(s, true, t, out, snap_slot_.back());
      snap_slot_.publish();
      const double us = 1e-3 * static_cast<double>(monoNs() - t0);
      stats_.record(-1.0, us, us);
      return !stop_.load(std::memory_order_acquire);
    });
    if (!error.empty()) {
      std::fprintf(stderr, "robo.rt: %s loop ended: %s\n", backend_->name().c_str(), error.c_str());
      std::lock_guard<std::mutex> lock(rt_status_mutex_);
      rt_status_.warning += backend_->name() + " loop ended: " + error + " ";
    }
    return;
  }
  const ControllerConfig& cfg = controller_.config();
  Waker waker(cfg.wake_mode, cfg.spin_margin_us, 1e-3 * static_cast<double>(period_ns));
  controller_.loopStarted(realtime ? wall_base_t_.load() : (backend_->simulated() ? backend_->simTime() : now()));
  std::int64_t next = monoNs() + period_ns;
  std::int64_t cpu_mark = threadCpuNs(), wall_mark = monoNs();
  while (!stop_.load(std::memory_order_acquire)) {
    std::int64_t spin_ns = 0;
    if (realtime) {
      const Wake wake = waker.wait(next);
      spin_ns = wake.spin_ns;
      stats_.recordWake(wake.latency_us, waker.marginUs());
      const double t = wall_base_t_.load(std::memory_order_relaxed) +
                       1e-9 * static_cast<double>(wake.time_ns - wall_base_ns_.load(std::memory_order_relaxed));
      tick(t, 1e-3 * static_cast<double>(wake.time_ns - next));
    } else {  // as fast as possible, simulated time
      tick(backend_->simulated() ? backend_->simTime() : now(), -1.0);
    }
    const std::int64_t end = monoNs();
    const std::int64_t cpu = threadCpuNs();  // a system call (~0.3 us), after the tick's work
    stats_.addLoopTime(cpu - cpu_mark, end - wall_mark, spin_ns);
    cpu_mark = cpu;
    wall_mark = end;
    if (!realtime) continue;
    next += period_ns;
    if (end > next) {  // missed the next deadline: count it and skip, never burst to catch up
      stats_.addOverrun();
      controller_.events().add(Event::overruns);
      while (next <= end) next += period_ns;
    }
  }
}

void Runtime::start(bool realtime) {
  std::lock_guard<std::mutex> lock(start_mutex_);
  if (running()) throw std::runtime_error("robo.rt: already running");
  if (!backend_->simulated() && !realtime) {
    throw std::invalid_argument("robo.rt: a hardware backend only runs with realtime=True");
  }
  if (!acquire(2)) throw std::runtime_error("robo.rt: start() while step() runs");
  stop_.store(false);
  realtime_.store(realtime);
  if (backend_->simulated()) sim_time_.store(backend_->simTime());
  {
    std::lock_guard<std::mutex> st(rt_status_mutex_);
    rt_status_ = RtStatus{};
  }
  std::atomic<bool> ready{false};
  thread_ = std::thread([this, realtime, &ready] {
    if (realtime) setupRealtime();
    // The wall clock continues from the current controller time, so targets stay valid.
    wall_base_t_.store(backend_->simulated() ? backend_->simTime() : 1e-9 * static_cast<double>(monoNs()));
    wall_base_ns_.store(monoNs());
    ready.store(true, std::memory_order_release);
    threadMain(realtime);
  });
  while (!ready.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::microseconds(100));
  running_.store(true, std::memory_order_release);
}

void Runtime::stop() {
  std::lock_guard<std::mutex> lock(start_mutex_);
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  thread_.join();
  running_.store(false, std::memory_order_release);
  realtime_.store(false);
  if (backend_->simulated()) sim_time_.store(backend_->simTime());
  if (memory_locked_by_us_) {
    munlockall();
    memory_locked_by_us_ = false;
  }
  release();
}

}  // namespace robo::rt
