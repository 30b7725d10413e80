// Safety and command events, counted with relaxed atomics (readable from any thread).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace robo::rt {

// X-macro: name, meaning. Per-tick events count ticks during which the limit was active.
#define ROBO_RT_EVENTS(X)                                                                       \
  X(commands_accepted)     /* targets, chunks accepted into the command slot */                 \
  X(rejected_nonfinite)    /* commands with NaN/inf anywhere, rejected whole */                 \
  X(rejected_out_of_range) /* commands outside joint limits, workspace box, width range, ... */  \
  X(rejected_while_held)   /* commands sent while the watchdog holds (call rearm()) */          \
  X(watchdog_trips)        /* newest target older than the timeout: switched to hold */         \
  X(state_timeouts)        /* no fresh robot state for state_timeout_s: switched to hold */     \
  X(rearms)                /* rearm() calls served */                                           \
  X(resets)                /* reset() calls served */                                           \
  X(gains_changed)         /* set_gains() accepted */                                           \
  X(gains_rejected)        /* set_gains() with invalid values */                                \
  X(reference_limited)     /* ticks with the OSC pose error clipped */                          \
  X(joint_limit_active)    /* ticks with a joint inside its soft limit zone */                  \
  X(velocity_limit_active) /* ticks with a joint faster than its limit */                       \
  X(joint_brake_active)    /* ticks with a joint braked to stop before its position limit */    \
  X(workspace_active)      /* ticks with the TCP outside the workspace box */                   \
  X(torque_clipped)        /* ticks with a torque clipped to its limit */                       \
  X(torque_rate_clipped)   /* ticks with a torque change clipped to the rate limit */           \
  X(nonfinite_state)       /* ticks whose measured state had NaN/inf (last good state used) */  \
  X(nonfinite_torque)      /* ticks whose control law gave NaN/inf (damped gravity used) */     \
  X(overruns)              /* ticks that ended after the next deadline */

enum class Event : int {
#define ROBO_RT_ENUM(name) name,
  ROBO_RT_EVENTS(ROBO_RT_ENUM)
#undef ROBO_RT_ENUM
  kCount
};

constexpr std::array<const char*, static_cast<size_t>(Event::kCount)> kEventNames = {
#define ROBO_RT_NAME(name) #name,
    ROBO_RT_EVENTS(ROBO_RT_NAME)
#undef ROBO_RT_NAME
};

class Events {
 public:
  void add(Event e, std::uint64_t n = 1) noexcept {
    c_[static_cast<size_t>(e)].fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t get(Event e) const noexcept { return c_[static_cast<size_t>(e)].load(std::memory_order_relaxed); }
  std::uint64_t get(size_t i) const noexcept { return c_[i].load(std::memory_order_relaxed); }
  void clear() noexcept {
    for (auto& c : c_) c.store(0, std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<std::uint64_t>, static_cast<size_t>(Event::kCount)> c_{};
};

}  // namespace robo::rt
