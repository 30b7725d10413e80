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

  // --- wake-up and CPU cost of the loop thread (issue 24); 0 for a backend that runs its own loop
  /// how late clock_nanosleep returned after its own target (us): the OS's wake-up latency, which
  /// the spin mode absorbs (its target is spin_margin_us before the deadline); real-time mode only
  Percentiles wakeup;
  double spin_margin_us = 0;       ///< spin margin in use (us); 0 in sleep mode
  std::uint64_t late_wakeups = 0;  ///< sleeps that returned after the deadline itself (no spin could help)
  double loop_cpu_s = 0;           ///< CPU time of the loop thread since reset_stats() (s)
  double loop_wall_s = 0;          ///< wall time the loop thread ran since reset_stats() (s)
  double loop_cpu_fraction = 0;    ///< loop_cpu_s / loop_wall_s: the share of one core the loop costs
  double spin_s = 0;               ///< time spent spinning since reset_stats() (s), part of loop_cpu_s
};

class TimingStats {
 public:
  explicit TimingStats(int window);
  /// Loop thread: one tick's timing (us). lateness_us < 0 means "not paced" (fast mode).
  void record(double lateness_us, double compute_us, double tick_us) noexcept;
  /// Loop thread, real-time mode: one wake-up; latency_us < 0 = it did not sleep (no sample).
  void recordWake(double latency_us, double margin_us) noexcept;
  /// Loop thread: CPU, wall and spin time since its previous call (ns).
  void addLoopTime(std::int64_t cpu_ns, std::int64_t wall_ns, std::int64_t spin_ns) noexcept;
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
  std::unique_ptr<std::atomic<float>[]> lateness_, compute_, tick_, wakeup_;
  std::atomic<std::uint64_t> n_{0}, n_late_{0}, overruns_{0}, n_wake_{0}, late_wakeups_{0};
  std::atomic<double> max_lateness_{0}, max_compute_{0}, period_us_{0}, spin_margin_us_{0};
  std::atomic<std::int64_t> cpu_ns_{0}, wall_ns_{0}, spin_ns_{0};
};

}  // namespace robo::rt
