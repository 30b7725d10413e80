#pragma once
#include <string>
namespace franka { struct GripperState { double width = 0, max_width = 0; bool is_grasped = false; };
class Gripper { public: explicit Gripper(const std::string&); bool move(double width, double speed);
  bool grasp(double width, double speed, double force, double epsilon_inner = 0.005, double epsilon_outer = 0.005) const;
  GripperState readOnce() const; bool stop() const; }; }
