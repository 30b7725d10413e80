// Per-tick timing statistics: the loop records into fixed rings of atomics (no allocation, no
// locks); Python summarises a copy (percentiles) off the hot path.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace robo::rt {

/// Percentiles of one timing quantity over the recorded window, in microseconds.
struct Percentiles {
  double p50 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;  ///< (us)
  std::uint64_t n = 0;  ///< samples in the window
};

/// Snapshot of the loop timing.
struct StatsSummary {
  std::uint64_t ticks = 0;       ///< ticks since the last reset_stats()
  std::uint64_t overruns = 0;    ///< ticks that ended after the next deadline
  double period_us = 0;          ///< nominal loop period (us)
  double max_lateness_us = 0;    ///< worst wake lateness since reset_stats(), not only in the window (us)
  double max_compute_us = 0;     ///< worst control compute since reset_stats() (us)
  Percentiles lateness;          ///< wake time minus absolute deadline (us); real-time mode only
  Percentiles compute;           ///< controller compute per tick: model, law, limits (us)
  Percentiles tick;              ///< whole tick: read, compute, write, physics step (us)
};

class TimingStats {
 public:
  explicit TimingStats(int window);
  /// Loop thread: one tick's timing (us). lateness_us < 0 means "not paced" (fast mode).
  void record(double lateness_us, double compute_us, double tick_us) noexcept;
  /// Loop thread: a tick ended after the next deadline.
  void addOverrun() noexcept { overruns_.fetch_add(1, std::memory_order_relaxed); }
  void setPeriod(double period_us) noexcept { period_us_.store(period_us, std::memory_order_relaxed); }
  /// Any thread: percentiles over the window (copies and sorts; allocates).
  StatsSummary summarize() const;
  /// Any thread: forget everything.
  void clear() noexcept;

 private:
  static void atomicMax(std::atomic<double>& a, double v) noexcept;
  int window_;
  std::unique_ptr<std::atomic<float>[]> lateness_, compute_, tick_;
  std::atomic<std::uint64_t> n_{0}, n_late_{0}, overruns_{0};
  std::atomic<double> max_lateness_{0}, max_compute_{0}, period_us_{0};
};

}  // namespace robo::rt
