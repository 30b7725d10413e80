#include "robo_rt/stats.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace robo::rt {

TimingStats::TimingStats(int window)
    : window_(std::max(window, 16)),
      lateness_(new std::atomic<float>[static_cast<size_t>(window_)]),
      compute_(new std::atomic<float>[static_cast<size_t>(window_)]),
      tick_(new std::atomic<float>[static_cast<size_t>(window_)]),
      wakeup_(new std::atomic<float>[static_cast<size_t>(window_)]) {
  clear();
}

void TimingStats::atomicMax(std::atomic<double>& a, double v) noexcept {
  double cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

void TimingStats::record(double lateness_us, double compute_us, double tick_us) noexcept {
  const std::uint64_t i = n_.load(std::memory_order_relaxed);
  const size_t slot = static_cast<size_t>(i % static_cast<std::uint64_t>(window_));
  compute_[slot].store(static_cast<float>(compute_us), std::memory_order_relaxed);
  tick_[slot].store(static_cast<float>(tick_us), std::memory_order_relaxed);
  n_.store(i + 1, std::memory_order_release);
  atomicMax(max_compute_, compute_us);
  if (lateness_us >= 0.0) {
    const std::uint64_t j = n_late_.load(std::memory_order_relaxed);
    lateness_[static_cast<size_t>(j % static_cast<std::uint64_t>(window_))].store(
        static_cast<float>(lateness_us), std::memory_order_relaxed);
    n_late_.store(j + 1, std::memory_order_release);
    atomicMax(max_lateness_, lateness_us);
  }
}

void TimingStats::recordWake(double latency_us, double margin_us) noexcept {
  spin_margin_us_.store(margin_us, std::memory_order_relaxed);
  if (latency_us < 0.0) return;
  if (latency_us > margin_us) late_wakeups_.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t j = n_wake_.load(std::memory_order_relaxed);
  wakeup_[static_cast<size_t>(j % static_cast<std::uint64_t>(window_))].store(static_cast<float>(latency_us),
                                                                             std::memory_order_relaxed);
  n_wake_.store(j + 1, std::memory_order_release);
}

void TimingStats::addLoopTime(std::int64_t cpu_ns, std::int64_t wall_ns, std::int64_t spin_ns) noexcept {
  cpu_ns_.fetch_add(cpu_ns, std::memory_order_relaxed);
  wall_ns_.fetch_add(wall_ns, std::memory_order_relaxed);
  spin_ns_.fetch_add(spin_ns, std::memory_order_relaxed);
}

namespace {

Percentiles percentiles(const std::atomic<float>* ring, std::uint64_t count, int window) {
  Percentiles p;
  const size_t n = static_cast<size_t>(std::min<std::uint64_t>(count, static_cast<std::uint64_t>(window)));
  if (n == 0) return p;
  std::vector<double> v(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    v[i] = ring[i].load(std::memory_order_relaxed);
    sum += v[i];
  }
  std::sort(v.begin(), v.end());
  auto q = [&](double f) {  // nearest-rank percentile
    const size_t k = static_cast<size_t>(std::ceil(f * static_cast<double>(n))) - 1;
    return v[std::min(k, n - 1)];
  };
  p.p50 = q(0.50);
  p.p99 = q(0.99);
  p.p999 = q(0.999);
  p.max = v.back();
  p.mean = sum / static_cast<double>(n);
  p.n = n;
  return p;
}

}  // namespace

StatsSummary TimingStats::summarize() const {
  StatsSummary s;
  s.ticks = n_.load(std::memory_order_acquire);
  s.overruns = overruns_.load(std::memory_order_relaxed);
  s.period_us = period_us_.load(std::memory_order_relaxed);
  s.max_lateness_us = max_lateness_.load(std::memory_order_relaxed);
  s.max_compute_us = max_compute_.load(std::memory_order_relaxed);
  s.compute = percentiles(compute_.get(), s.ticks, window_);
  s.tick = percentiles(tick_.get(), s.ticks, window_);
  s.lateness = percentiles(lateness_.get(), n_late_.load(std::memory_order_acquire), window_);
  s.wakeup = percentiles(wakeup_.get(), n_wake_.load(std::memory_order_acquire), window_);
  s.spin_margin_us = spin_margin_us_.load(std::memory_order_relaxed);
  s.late_wakeups = late_wakeups_.load(std::memory_order_relaxed);
  s.loop_cpu_s = 1e-9 * static_cast<double>(cpu_ns_.load(std::memory_order_relaxed));
  s.loop_wall_s = 1e-9 * static_cast<double>(wall_ns_.load(std::memory_order_relaxed));
  s.loop_cpu_fraction = s.loop_wall_s > 0 ? s.loop_cpu_s / s.loop_wall_s : 0.0;
  s.spin_s = 1e-9 * static_cast<double>(spin_ns_.load(std::memory_order_relaxed));
  return s;
}

void TimingStats::clear() noexcept {
  n_.store(0);
  n_late_.store(0);
  overruns_.store(0);
  max_lateness_.store(0);
  max_compute_.store(0);
  n_wake_.store(0);
  late_wakeups_.store(0);
  cpu_ns_.store(0);
  wall_ns_.store(0);
  spin_ns_.store(0);
  for (int i = 0; i < window_; ++i) {
    lateness_[i].store(0);
    compute_[i].store(0);
    tick_[i].store(0);
    wakeup_[i].store(0);
  }
}

}  // namespace robo::rt
