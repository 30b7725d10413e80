// UNTESTED on hardware (no arm or libfranka on the build machines); compiled only with libfranka.
#include "robo_rt/franka_backend.hpp"

#include "robo_rt/mujoco_controller.hpp"

#include <franka/exception.h>
#include <franka/gripper.h>
#include <franka/robot.h>
#include <franka/robot_state.h>

#include <chrono>
#include <cmath>

namespace robo::rt {

namespace {

constexpr int kFrankaDof = 7;

RobotState fromFranka(const franka::RobotState& fs) {
  RobotState s(kFrankaDof);
  for (int i = 0; i < kFrankaDof; ++i) {
    s.q[i] = fs.q[static_cast<size_t>(i)];
    s.dq[i] = fs.dq[static_cast<size_t>(i)];
    s.tau_measured[i] = fs.tau_J[static_cast<size_t>(i)];
  }
  return s;
}

}  // namespace

FrankaBackend::FrankaBackend(const FrankaOptions& options) : opt_(options) {
  robot_ = std::make_unique<franka::Robot>(
      opt_.robot_ip, opt_.enforce_realtime ? franka::RealtimeConfig::kEnforce : franka::RealtimeConfig::kIgnore);
  const std::array<double, 7>& t = opt_.collision_torque;
  const std::array<double, 6>& f = opt_.collision_force;
  robot_->setCollisionBehavior(t, t, t, t, f, f, f, f);
  if (opt_.use_gripper) {
    gripper_ = std::make_unique<franka::Gripper>(opt_.robot_ip);
    gripper_width_.store(gripper_->readOnce().width);
    gripper_thread_ = std::thread([this] { gripperLoop(); });
  }
}

FrankaBackend::~FrankaBackend() {
  stop_gripper_.store(true);
  if (gripper_) {
    try {
      gripper_->stop();
    } catch (const franka::Exception&) {
    }
  }
  if (gripper_thread_.joinable()) gripper_thread_.join();
}

bool FrankaBackend::read(RobotState& out) {  // outside the loop only (reset() before start())
  try {
    out = fromFranka(robot_->readOnce());
  } catch (const franka::Exception&) {
    return false;
  }
  out.gripper_width = gripper_width_.load();
  return true;
}

std::string FrankaBackend::runOwnLoop(const TickFn& tick) {
  JointCommand cmd;
  try {
    robot_->control(
        [&](const franka::RobotState& fs, franka::Duration) -> franka::Torques {
          RobotState s = fromFranka(fs);
          s.gripper_width = gripper_width_.load(std::memory_order_relaxed);
          const bool keep_going = tick(s, cmd);
          gripper_target_.store(cmd.gripper_width_target, std::memory_order_relaxed);
          std::array<double, 7> tau{};
          for (int i = 0; i < kFrankaDof; ++i) tau[static_cast<size_t>(i)] = cmd.tau[i] - cmd.gravity[i];  // robot adds g
          franka::Torques out(tau);
          return keep_going ? out : franka::MotionFinished(out);
        },
        /*limit_rate=*/true, /*cutoff_frequency=*/franka::kMaxCutoffFrequency);
  } catch (const franka::ControlException& e) {
    return std::string("libfranka control exception (call automaticErrorRecovery after checking the arm): ") +
           e.what();
  } catch (const franka::Exception& e) {
    return std::string("libfranka exception: ") + e.what();
  }
  return {};
}

void FrankaBackend::gripperLoop() {  // non real-time: franka::Gripper calls block for the whole motion
  double commanded = -1.0;
  while (!stop_gripper_.load()) {
    try {
      const franka::GripperState gs = gripper_->readOnce();
      gripper_width_.store(gs.width);
      const double target = gripper_target_.load();
      if (target >= 0.0 && std::abs(target - commanded) > opt_.gripper_deadband) {
        commanded = target;
        if (target < gs.width) {  // closing: grasp with force, accept whatever width the object has
          gripper_->grasp(target, opt_.gripper_speed, opt_.grasp_force, /*epsilon_inner=*/0.08,
                          /*epsilon_outer=*/0.08);
        } else {
          gripper_->move(target, opt_.gripper_speed);
        }
      }
    } catch (const franka::Exception&) {
      commanded = -1.0;  // retry on the next target change
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

FrankaController::FrankaController(const FrankaOptions& options, const std::string& urdf_path,
                                   const ControllerConfig& cfg)
    : Runtime(std::make_unique<FrankaBackend>(options),
              std::make_unique<RobotModel>(urdf_path, RobotDescription::panda()), cfg) {}

}  // namespace robo::rt
