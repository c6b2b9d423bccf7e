// The scheduler's counters: bumped by the rooms on the loop, read by Metrics() from any
// thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace flowmesh::scheduler {

struct Counters {
  std::atomic<uint64_t> submitted_workflows{0}, submitted_tasks{0}, dispatched{0}, succeeded{0},
      failed{0}, cancelled{0}, retried{0}, workers_lost{0}, bus_messages{0}, reused{0}, joined{0};
};

}  // namespace flowmesh::scheduler
