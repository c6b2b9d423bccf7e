// Time sources. Wall time (seconds since the epoch, as a double) is what records and
// the API carry; monotonic time measures intervals.
//
// Components that keep deadlines (the scheduler's watchdog, retry backoff, worker grace,
// command timeouts) read time through a TimeSource handed to them in their config, so
// tests can use a ManualTimeSource and advance it instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace flowmesh {

inline double WallSeconds() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() / 1e6;
}

inline int64_t MonoMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// Where a component reads the time. Thread-safe.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual double WallSeconds() const = 0;
  virtual int64_t MonoMicros() const = 0;
  // True when time passes by itself (the owner arms real timers for its deadlines); a
  // manual source only moves when told to, and its owner's deadlines fire on Tick().
  virtual bool advances_by_itself() const = 0;
  double MonoSeconds() const { return static_cast<double>(MonoMicros()) / 1e6; }
};

// The process's clocks.
class SystemTimeSource final : public TimeSource {
 public:
  double WallSeconds() const override { return flowmesh::WallSeconds(); }
  int64_t MonoMicros() const override { return flowmesh::MonoMicros(); }
  bool advances_by_itself() const override { return true; }
  // One shared instance (stateless).
  static SystemTimeSource* Get() {
    static SystemTimeSource source;
    return &source;
  }
};

// A clock for tests: starts at a fixed point and moves only by Advance().
class ManualTimeSource final : public TimeSource {
 public:
  explicit ManualTimeSource(double wall_start = 1.7e9, int64_t mono_start_us = 1'000'000'000)
      : wall_us_(static_cast<int64_t>(wall_start * 1e6)), mono_us_(mono_start_us) {}
  double WallSeconds() const override { return static_cast<double>(wall_us_.load()) / 1e6; }
  int64_t MonoMicros() const override { return mono_us_.load(); }
  bool advances_by_itself() const override { return false; }
  void Advance(double seconds) {
    auto us = static_cast<int64_t>(seconds * 1e6);
    wall_us_ += us;
    mono_us_ += us;
  }

 private:
  std::atomic<int64_t> wall_us_;
  std::atomic<int64_t> mono_us_;
};

}  // namespace flowmesh
