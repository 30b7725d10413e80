#pragma once
#include <array>
namespace franka { struct RobotState { std::array<double,7> q{}, dq{}, tau_J{}; }; }
