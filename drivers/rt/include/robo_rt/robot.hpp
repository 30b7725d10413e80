// What part of a robot the controller drives: named joint groups, the TCP frames of Cartesian
// targets, and the names a simulated backend needs. The Panda is one group ("arm") moving one TCP;
// a G1 upper body is waist (held at its posture in Cartesian mode) + left arm (left TCP) + right arm.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace robo::rt {

/// One named group of controlled joints.
struct JointGroup {
  std::string name;                 ///< e.g. "arm", "waist", "left_arm"
  std::vector<std::string> joints;  ///< URDF joint names, in the URDF's order
  std::string tcp;                  ///< TCP frame this group moves in Cartesian mode; empty = the group holds its posture there
};

/// The controlled joints (the groups' joints, group after group: the controller's n joints, in the
/// URDF's order), the TCP frames Cartesian targets address, and the MuJoCo elements a simulated
/// backend drives. Every URDF joint outside the groups is locked at 0.
struct RobotDescription {
  std::vector<JointGroup> groups;         ///< joint groups, base to tip
  std::vector<std::string> tcp_frames;    ///< 1 or 2 URDF frames; Cartesian targets come in this order
  std::vector<std::string> actuators;     ///< MuJoCo actuator of each joint, in joint order (empty = the joint names)
  std::vector<std::string> fingers;       ///< MuJoCo slide joints of a two-finger gripper (none or two)
  std::string gripper_actuator;           ///< MuJoCo actuator of that gripper (empty = no gripper)

  /// All controlled joints, group after group.
  std::vector<std::string> joints() const {
    std::vector<std::string> out;
    for (const auto& g : groups) out.insert(out.end(), g.joints.begin(), g.joints.end());
    return out;
  }
  /// Index of the TCP a joint's group moves, or -1.
  std::vector<int> jointTcp() const {
    std::vector<int> out;
    for (const auto& g : groups) {
      const auto it = std::find(tcp_frames.begin(), tcp_frames.end(), g.tcp);
      out.insert(out.end(), g.joints.size(), g.tcp.empty() || it == tcp_frames.end()
                                                 ? -1
                                                 : static_cast<int>(it - tcp_frames.begin()));
    }
    return out;
  }
  /// Empty when usable, else a one-line message naming the problem.
  std::string validate(int max_joints, int max_tcps) const {
    const std::vector<std::string> js = joints();
    if (js.empty()) return "robot: the joint groups name no joint";
    if (static_cast<int>(js.size()) > max_joints) {
      return "robot: " + std::to_string(js.size()) + " joints, at most " + std::to_string(max_joints);
    }
    if (tcp_frames.empty() || static_cast<int>(tcp_frames.size()) > max_tcps) {
      return "robot: tcp_frames must name 1 to " + std::to_string(max_tcps) + " frames";
    }
    for (const auto& g : groups) {
      if (!g.tcp.empty() && std::find(tcp_frames.begin(), tcp_frames.end(), g.tcp) == tcp_frames.end()) {
        return "robot: group '" + g.name + "' moves tcp '" + g.tcp + "', which is not in tcp_frames";
      }
    }
    for (size_t i = 0; i < js.size(); ++i) {
      if (std::find(js.begin() + static_cast<long>(i) + 1, js.end(), js[i]) != js.end()) {
        return "robot: joint '" + js[i] + "' is in two groups";
      }
    }
    if (!actuators.empty() && actuators.size() != js.size()) {
      return "robot: " + std::to_string(actuators.size()) + " actuators for " + std::to_string(js.size()) + " joints";
    }
    if (!fingers.empty() && fingers.size() != 2) return "robot: fingers must name none or two joints";
    return {};
  }
  /// MuJoCo actuator of joint i.
  std::string actuator(size_t i) const { return actuators.empty() ? joints()[i] : actuators[i]; }

  /// The Franka Panda of robo.sim (joint1..7 -> actuator1..7, TCP `tcp`, two-finger gripper).
  static RobotDescription panda() {
    RobotDescription d;
    JointGroup arm{"arm", {}, "tcp"};
    for (int i = 1; i <= 7; ++i) {
      arm.joints.push_back("joint" + std::to_string(i));
      d.actuators.push_back("actuator" + std::to_string(i));
    }
    d.groups = {arm};
    d.tcp_frames = {"tcp"};
    d.fingers = {"finger_joint1", "finger_joint2"};
    d.gripper_actuator = "actuator_gripper";
    return d;
  }
};

}  // namespace robo::rt
