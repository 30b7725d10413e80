#pragma once
#include <array>
#include <cstdint>
namespace unitree_hg::msg::dds_ {
class MotorState_ { float q_=0,dq_=0,tau_est_=0; public: const float& q() const {return q_;} const float& dq() const {return dq_;} const float& tau_est() const {return tau_est_;} };
class LowState_ { uint8_t mode_machine_=0; std::array<MotorState_,35> motor_state_{}; uint32_t crc_=0; public:
  const std::array<MotorState_,35>& motor_state() const {return motor_state_;} const uint8_t& mode_machine() const {return mode_machine_;} const uint32_t& crc() const {return crc_;} };
}
