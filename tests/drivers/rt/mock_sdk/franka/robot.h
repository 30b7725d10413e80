#pragma once
#include <array>
#include <functional>
#include <string>
#include <franka/robot_state.h>
namespace franka {
constexpr double kMaxCutoffFrequency = 1000.0;
enum class RealtimeConfig { kEnforce, kIgnore };
class Duration { public: double toSec() const; };
struct Torques { Torques(const std::array<double,7>&) noexcept; std::array<double,7> tau_J{}; bool motion_finished = false; };
template <typename T> T MotionFinished(T command) noexcept { command.motion_finished = true; return command; }
class Robot { public:
  explicit Robot(const std::string&, RealtimeConfig = RealtimeConfig::kEnforce, size_t log_size = 50);
  RobotState readOnce();
  void setCollisionBehavior(const std::array<double,7>&, const std::array<double,7>&, const std::array<double,7>&, const std::array<double,7>&,
                            const std::array<double,6>&, const std::array<double,6>&, const std::array<double,6>&, const std::array<double,6>&);
  void control(std::function<Torques(const RobotState&, franka::Duration)>, bool limit_rate = true, double cutoff_frequency = 100.0);
};
}
