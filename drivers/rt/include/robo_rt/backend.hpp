// The one interface between the controller and a robot: read state, write torques.
#pragma once

#include "robo_rt/types.hpp"

#include <functional>
#include <optional>
#include <string>

namespace robo::rt {

class Backend {
 public:
  virtual ~Backend() = default;
  /// Short name ("mujoco", "franka", "external").
  virtual std::string name() const = 0;
  /// The rate the device wants to be commanded at (Hz).
  virtual double nativeRateHz() const = 0;
  /// Latest measured state. Returns false when no fresh state is available (communication lost).
  virtual bool read(RobotState& out) = 0;
  /// Apply one tick's command. Called right after read() on the loop thread.
  virtual void write(const JointCommand& cmd) = 0;

  /// Simulated backends integrate one loop period here; hardware does nothing.
  virtual void advance() {}
  /// Simulated backends: the physics clock (s). Hardware: not used.
  virtual bool simulated() const { return false; }
  virtual double simTime() const { return 0.0; }

  /// True when the device paces the loop itself (libfranka calls back every 1 ms); the loop then
  /// calls runOwnLoop() on its thread instead of sleeping to absolute deadlines.
  virtual bool ownsLoop() const { return false; }
  /// Tick function for ownsLoop() backends: gets the state, fills the command, returns false to stop.
  using TickFn = std::function<bool(const RobotState&, JointCommand&)>;
  /// Runs the device's own loop until `tick` returns false or the device fails; returns an empty
  /// string on a clean stop, else what went wrong (e.g. a libfranka reflex).
  virtual std::string runOwnLoop(const TickFn& tick) { return "this backend has no loop of its own"; }

  /// Whether the Runtime may reset() at construction (it needs a state); false for a backend fed
  /// from outside, which has none until its I/O runs.
  virtual bool stateAtConstruction() const { return true; }

  /// Rotor inertia the backend knows about (MuJoCo dof_armature) (kg m^2).
  virtual std::optional<VecN> armature() const { return std::nullopt; }
};

}  // namespace robo::rt
