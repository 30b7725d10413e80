// UNTESTED on hardware (no robot or unitree_sdk2 on the build machines); compiled only with the SDK.
#include "robo_rt/unitree_backend.hpp"

#include "robo_rt/model.hpp"

#include <unitree/idl/hg/LowCmd_.hpp>
#include <unitree/idl/hg/LowState_.hpp>
#include <unitree/robot/channel/channel_publisher.hpp>
#include <unitree/robot/channel/channel_subscriber.hpp>

#include <time.h>

#include <stdexcept>

namespace robo::rt {

namespace {

using LowCmd = unitree_hg::msg::dds_::LowCmd_;
using LowState = unitree_hg::msg::dds_::LowState_;

// CRC-32 (poly 0x04C11DB7, MSB first, no reflection) over 32-bit words, as the G1 firmware checks it.
std::uint32_t crc32Words(const std::uint32_t* words, std::uint32_t n) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::uint32_t i = 0; i < n; ++i) {
    for (std::uint32_t bit = 0x80000000u; bit != 0; bit >>= 1) {
      const bool top = (crc & 0x80000000u) != 0;
      crc <<= 1;
      if (top) crc ^= 0x04C11DB7u;
      if (words[i] & bit) crc ^= 0x04C11DB7u;
    }
  }
  return crc;
}

std::int64_t monoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

}  // namespace

struct UnitreeBackend::Dds {
  unitree::robot::ChannelPublisherPtr<LowCmd> publisher;
  unitree::robot::ChannelSubscriberPtr<LowState> subscriber;
  LowCmd cmd;
};

UnitreeBackend::UnitreeBackend(const UnitreeOptions& options) : opt_(options), dds_(std::make_unique<Dds>()) {
  if (opt_.num_motors < 1 || opt_.num_motors > 35) throw std::invalid_argument("robo.rt: num_motors in [1, 35]");
  for (int m : opt_.arm_motors) {
    if (m < 0 || m >= opt_.num_motors) throw std::invalid_argument("robo.rt: arm motor index out of range");
  }
  unitree::robot::ChannelFactory::Instance()->Init(0, opt_.network_interface);
  dds_->publisher.reset(new unitree::robot::ChannelPublisher<LowCmd>("rt/lowcmd"));
  dds_->publisher->InitChannel();
  dds_->subscriber.reset(new unitree::robot::ChannelSubscriber<LowState>("rt/lowstate"));
  dds_->subscriber->InitChannel([this](const void* msg) { onLowState(msg); }, 1);
}

UnitreeBackend::~UnitreeBackend() {
  if (dds_ && dds_->subscriber) dds_->subscriber->CloseChannel();
}

void UnitreeBackend::onLowState(const void* message) {  // DDS thread
  const LowState& ls = *static_cast<const LowState*>(message);
  if (ls.crc() != crc32Words(reinterpret_cast<const std::uint32_t*>(&ls), (sizeof(LowState) >> 2) - 1)) return;
  Motors& m = state_slot_.back();
  for (int i = 0; i < opt_.num_motors; ++i) {
    m.q[static_cast<size_t>(i)] = ls.motor_state()[static_cast<size_t>(i)].q();
    m.dq[static_cast<size_t>(i)] = ls.motor_state()[static_cast<size_t>(i)].dq();
    m.tau[static_cast<size_t>(i)] = ls.motor_state()[static_cast<size_t>(i)].tau_est();
  }
  m.mode_machine = ls.mode_machine();
  m.stamp_ns = monoNs();
  state_slot_.publish();
  have_state_.store(true, std::memory_order_release);
}

bool UnitreeBackend::read(RobotState& out) {
  if (state_slot_.fetch()) latest_ = state_slot_.front();
  if (!have_state_.load(std::memory_order_acquire)) return false;
  if (!hold_captured_) {
    hold_q_ = latest_.q;
    hold_captured_ = true;
  }
  for (int i = 0; i < kDof; ++i) {
    const size_t k = static_cast<size_t>(opt_.arm_motors[static_cast<size_t>(i)]);
    out.q[i] = latest_.q[k];
    out.dq[i] = latest_.dq[k];
    out.tau_measured[i] = latest_.tau[k];
  }
  return 1e-9 * static_cast<double>(monoNs() - latest_.stamp_ns) < opt_.stale_after_s;
}

void UnitreeBackend::write(const JointCommand& c) {
  if (!hold_captured_) return;  // never command motors before their positions are known
  LowCmd& cmd = dds_->cmd;
  cmd.mode_pr() = 0;  // pitch/roll ankle mode
  cmd.mode_machine() = latest_.mode_machine;
  for (int i = 0; i < opt_.num_motors; ++i) {
    auto& m = cmd.motor_cmd()[static_cast<size_t>(i)];
    m.mode() = 1;
    m.q() = hold_q_[static_cast<size_t>(i)];
    m.dq() = 0.0f;
    m.kp() = opt_.hold_kp;
    m.kd() = opt_.hold_kd;
    m.tau() = 0.0f;
  }
  for (int i = 0; i < kDof; ++i) {  // the arm: pure torque from the controller
    auto& m = cmd.motor_cmd()[static_cast<size_t>(opt_.arm_motors[static_cast<size_t>(i)])];
    m.kp() = 0.0f;
    m.kd() = 0.0f;
    m.tau() = static_cast<float>(c.tau[i]);
  }
  cmd.crc() = crc32Words(reinterpret_cast<const std::uint32_t*>(&cmd), (sizeof(LowCmd) >> 2) - 1);
  dds_->publisher->Write(cmd);
}

UnitreeController::UnitreeController(const UnitreeOptions& options, const std::string& urdf_path,
                                     const std::vector<std::string>& arm_joints, const std::string& tcp_frame,
                                     const ControllerConfig& cfg)
    : Runtime(std::make_unique<UnitreeBackend>(options), std::make_unique<RobotModel>(urdf_path, arm_joints, tcp_frame),
              cfg) {}

}  // namespace robo::rt
