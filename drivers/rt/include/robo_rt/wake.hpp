// Waking up on time (issue 24). On an ordinary kernel, and more so in a VM, clock_nanosleep returns
// tens of microseconds after its deadline (timer interrupt, idle exit, the hypervisor), even for a
// SCHED_FIFO thread with 1 ns timer slack. The spin mode sleeps until `margin` before the deadline and
// spins on the monotonic clock for the rest; the margin tracks a high quantile of the measured
// wake-up latency and is bounded by a fraction of the period, so the CPU the spin costs is bounded.
// Header-only, used by the loop thread only; Waker::wait allocates nothing, takes no lock and makes
// no system call but the sleep (CLOCK_MONOTONIC is read through the vDSO).
#pragma once

#include "robo_rt/config.hpp"

#include <time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace robo::rt {

/// Shortest calibrated spin margin (us).
inline constexpr double kMinSpinMarginUs = 2.0;
/// Quantile of the wake-up latency the calibrated margin tracks: the sleep returns after the
/// deadline itself (and the spin cannot help) on about 1 - this of the ticks.
inline constexpr double kSpinQuantile = 0.995;

/// CLOCK_MONOTONIC (ns).
inline std::int64_t monoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

/// CPU time of the calling thread (ns).
inline std::int64_t threadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

/// Sleep until an absolute CLOCK_MONOTONIC time (ns); restarts after signals.
inline void sleepUntil(std::int64_t deadline_ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(deadline_ns / 1000000000LL);
  ts.tv_nsec = static_cast<long>(deadline_ns % 1000000000LL);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

/// The spin margin: fixed, or calibrated from the first wake-ups and then tracked online.
class SpinMargin {
 public:
  /// Wake-ups measured at the start, at the largest margin, before the first estimate.
  static constexpr int kCalibrationSamples = 256;

  /// fixed_us > 0: that margin, always. fixed_us == 0: start at max_us, calibrate, then track.
  SpinMargin(double fixed_us, double max_us)
      : fixed_(fixed_us > 0.0), max_us_(max_us), us_(fixed_us > 0.0 ? fixed_us : max_us) {}

  /// Current margin (us), within [kMinSpinMarginUs, max_us] when calibrated.
  double us() const { return us_; }
  /// Whether the calibration phase is over (always true for a fixed margin).
  bool calibrated() const { return fixed_ || n_calib_ >= kCalibrationSamples; }

  /// One sleep's wake-up latency (us): how long after its target clock_nanosleep returned.
  void observe(double latency_us) {
    if (fixed_ || !std::isfinite(latency_us)) return;
    if (n_calib_ < kCalibrationSamples) {
      calib_[static_cast<size_t>(n_calib_++)] = static_cast<float>(latency_us);
      if (n_calib_ == kCalibrationSamples) {  // nearest-rank kSpinQuantile of the calibration wake-ups
        const auto k = static_cast<size_t>(std::ceil(kSpinQuantile * kCalibrationSamples)) - 1;
        std::nth_element(calib_.begin(), calib_.begin() + static_cast<std::ptrdiff_t>(k), calib_.end());
        us_ = clamp(static_cast<double>(calib_[k]));
      }
      return;
    }
    // Stochastic-approximation quantile tracker: up by step * q on a miss, down by step * (1 - q)
    // otherwise; it settles where a fraction 1 - q of the wake-ups miss, and follows the load.
    us_ = clamp(latency_us > us_ ? us_ + kStepUs * kSpinQuantile : us_ - kStepUs * (1.0 - kSpinQuantile));
  }

 private:
  static constexpr double kStepUs = 4.0;  // tracker step: +3.98 us per miss, -0.02 us per hit
  double clamp(double v) const { return std::min(max_us_, std::max(std::min(kMinSpinMarginUs, max_us_), v)); }

  bool fixed_;
  double max_us_;
  double us_;
  int n_calib_ = 0;
  std::array<float, kCalibrationSamples> calib_{};
};

/// One wake-up of the loop.
struct Wake {
  std::int64_t time_ns = 0;   ///< when the loop went on (CLOCK_MONOTONIC, ns)
  double latency_us = -1.0;   ///< how late the sleep returned after its target (us); < 0 = did not sleep
  std::int64_t spin_ns = 0;   ///< time spent spinning (ns)
};

/// Waits for absolute deadlines, by sleeping (WakeMode::kSleep) or sleeping then spinning (kSpin).
class Waker {
 public:
  Waker(WakeMode mode, double spin_margin_us, double period_us)
      : mode_(mode), margin_(spin_margin_us, kMaxSpinFraction * period_us) {}

  /// Return at deadline_ns or just after it.
  Wake wait(std::int64_t deadline_ns) {
    Wake w;
    const std::int64_t target = deadline_ns - marginNs();
    std::int64_t now = monoNs();
    if (now < target) {
      sleepUntil(target);
      now = monoNs();
      w.latency_us = 1e-3 * static_cast<double>(now - target);
      if (mode_ == WakeMode::kSpin) margin_.observe(w.latency_us);
    }
    const std::int64_t spin_start = now;
    while (now < deadline_ns) now = monoNs();  // no pause instruction: a VM may deschedule pause loops
    w.spin_ns = now - spin_start;
    w.time_ns = now;
    return w;
  }

  /// Current spin margin (us); 0 in sleep mode.
  double marginUs() const { return mode_ == WakeMode::kSpin ? margin_.us() : 0.0; }

 private:
  std::int64_t marginNs() const { return static_cast<std::int64_t>(std::llround(1e3 * marginUs())); }

  WakeMode mode_;
  SpinMargin margin_;
};

}  // namespace robo::rt
