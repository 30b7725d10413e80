// Wait-free single-producer / single-consumer "latest value" slot (triple buffer).
// The producer never blocks the consumer and vice versa; the consumer always sees the newest
// complete value. Used for commands and gains (Python -> loop) and the state snapshot (loop -> Python).
#pragma once

#include <array>
#include <atomic>

namespace robo::rt {

template <class T>
class LatestSlot {
 public:
  /// Producer: the buffer to fill. Fill it completely, then publish().
  T& back() { return buf_[back_]; }
  /// Producer: make back() the newest value.
  void publish() {
    back_ = middle_.exchange(back_ | kNew, std::memory_order_acq_rel) & kIndex;
  }
  /// Consumer: take the newest value if one was published since the last call. No blocking.
  bool fetch() {
    if ((middle_.load(std::memory_order_acquire) & kNew) == 0) return false;
    front_ = middle_.exchange(front_, std::memory_order_acq_rel) & kIndex;
    return true;
  }
  /// Consumer: the value taken by the last successful fetch().
  const T& front() const { return buf_[front_]; }

 private:
  static constexpr int kIndex = 3;
  static constexpr int kNew = 4;
  std::array<T, 3> buf_{};
  int back_ = 0;
  int front_ = 1;
  alignas(64) std::atomic<int> middle_{2};
};

}  // namespace robo::rt
