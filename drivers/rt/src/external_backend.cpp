#include "robo_rt/external_backend.hpp"

#include "robo_rt/model.hpp"

#include <stdexcept>

namespace robo::rt {

ExternalBackend::ExternalBackend(int n, double rate_hz, double stale_after_s)
    : n_(n), rate_hz_(rate_hz), stale_after_s_(stale_after_s), latest_{RobotState(n), 0}, taken_(n) {
  if (n < 1 || n > kMaxDof) throw std::invalid_argument("robo.rt: external backend needs 1.." + std::to_string(kMaxDof) + " joints");
  if (!(rate_hz > 0.0)) throw std::invalid_argument("robo.rt: external backend rate_hz must be > 0");
  if (!(stale_after_s > 0.0)) throw std::invalid_argument("robo.rt: external backend stale_after_s must be > 0");
}

bool ExternalBackend::pushState(const VecN& q, const VecN& dq, const VecN& tau) {
  if (q.size() != n_ || dq.size() != n_ || tau.size() != n_ || !q.allFinite() || !dq.allFinite()) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  Stamped& s = state_slot_.back();
  s.state.resize(n_);
  s.state.q = q;
  s.state.dq = dq;
  s.state.tau_measured = tau.allFinite() ? tau : VecN(VecN::Zero(n_));
  s.stamp_ns = monoNs();
  state_slot_.publish();
  pushed_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool ExternalBackend::read(RobotState& out) {
  if (state_slot_.fetch()) {
    latest_ = state_slot_.front();
    have_state_ = true;
  }
  out.resize(n_);
  if (!have_state_) return false;
  out = latest_.state;
  return 1e-9 * static_cast<double>(monoNs() - latest_.stamp_ns) < stale_after_s_;
}

void ExternalBackend::write(const JointCommand& cmd) {
  cmd_slot_.back() = cmd;
  cmd_slot_.publish();
}

bool ExternalBackend::takeCommand(JointCommand& out) {
  std::lock_guard<std::mutex> lock(take_mutex_);
  if (cmd_slot_.fetch()) {
    taken_ = cmd_slot_.front();
    have_command_ = true;
  }
  if (have_command_) out = taken_;
  return have_command_;
}

ExternalController::ExternalController(const std::string& urdf_path, const RobotDescription& robot,
                                       const ControllerConfig& cfg, double rate_hz, double stale_after_s)
    : Runtime(std::make_unique<ExternalBackend>(static_cast<int>(robot.joints().size()), rate_hz, stale_after_s),
              std::make_unique<RobotModel>(urdf_path, robot), cfg) {}

}  // namespace robo::rt
