// Deadlines of the scheduler (retry backoff, command timeouts, the watchdog's period, the
// outbox's flush retry), kept against the scheduler's TimeSource rather than the loop's
// real timers, so a test with a ManualTimeSource fires them by advancing the clock and
// calling Scheduler::Tick(). Loop-owned: not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <utility>

#include "common/clock.h"

namespace flowmesh::scheduler {

class Deadlines {
 public:
  using Id = uint64_t;

  explicit Deadlines(const TimeSource* time) : time_(time) {}

  // Runs `fn` on the first RunDue() at or after `delay_s` from now. Never returns 0.
  Id After(double delay_s, std::function<void()> fn);
  void Cancel(Id id);
  // Runs every deadline that is due, in order (including ones that become due while
  // running, e.g. a zero delay set by one of them). Returns how many ran.
  int RunDue();
  // Monotonic seconds of the earliest deadline, if any.
  std::optional<double> NextDue() const;
  size_t size() const { return by_id_.size(); }

 private:
  const TimeSource* time_;
  Id next_id_ = 1;
  std::multimap<double, std::pair<Id, std::function<void()>>> by_due_;
  std::map<Id, double> by_id_;
};

}  // namespace flowmesh::scheduler
